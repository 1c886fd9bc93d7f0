"""The records every architecture is written in: layers, their canonical tensors, probe points."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class BatchNormSpec:
    """BatchNorm constants in one stated convention.

    ``momentum`` is PyTorch's: the weight of the *new* batch statistic,
    ``running = (1 - momentum) * running + momentum * batch``. Keras and Paddle
    state the weight of the *old* value instead, see :attr:`keras_paddle_momentum`.
    """

    epsilon: float
    momentum: float

    @property
    def torch_momentum(self) -> float:
        return self.momentum

    @property
    def keras_paddle_momentum(self) -> float:
        return 1.0 - self.momentum


@dataclass(frozen=True)
class ParamSpec:
    """One canonical tensor: its name, canonical shape and role.

    ``role`` is ``"<kind>.<slot>"`` (for example ``conv.weight`` or
    ``bn.running_var``); :mod:`resnet_core.names` maps each role to every
    framework's name and layout.
    """

    name: str
    shape: tuple[int, ...]
    role: str

    @property
    def trainable(self) -> bool:
        return self.role not in ("bn.running_mean", "bn.running_var")

    @property
    def module(self) -> str:
        return self.name.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Conv:
    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int  # symmetric zero padding on every side, as in PyTorch/Paddle
    bias: bool

    def params(self) -> list[ParamSpec]:
        k = self.kernel
        out = [ParamSpec(f"{self.name}.weight", (self.out_channels, self.in_channels, k, k), "conv.weight")]
        if self.bias:
            out.append(ParamSpec(f"{self.name}.bias", (self.out_channels,), "conv.bias"))
        return out

    def out_size(self, size: int) -> int:
        return conv_out(size, self.kernel, self.stride, self.padding)

    def macs(self, out_hw: tuple[int, int]) -> int:
        """Multiply-adds for one image whose output is ``out_hw``."""
        return self.out_channels * out_hw[0] * out_hw[1] * self.in_channels * self.kernel * self.kernel


@dataclass(frozen=True)
class BatchNorm:
    name: str
    channels: int
    bn: BatchNormSpec

    def params(self) -> list[ParamSpec]:
        c = (self.channels,)
        return [
            ParamSpec(f"{self.name}.weight", c, "bn.weight"),
            ParamSpec(f"{self.name}.bias", c, "bn.bias"),
            ParamSpec(f"{self.name}.running_mean", c, "bn.running_mean"),
            ParamSpec(f"{self.name}.running_var", c, "bn.running_var"),
        ]

    def macs(self, out_hw: tuple[int, int]) -> int:
        return 0  # not counted, see resnet_core.spec.flops


@dataclass(frozen=True)
class Linear:
    name: str
    in_features: int
    out_features: int

    def params(self) -> list[ParamSpec]:
        return [
            ParamSpec(f"{self.name}.weight", (self.out_features, self.in_features), "linear.weight"),
            ParamSpec(f"{self.name}.bias", (self.out_features,), "linear.bias"),
        ]

    def macs(self, out_hw: tuple[int, int]) -> int:
        return self.in_features * self.out_features


Layer = Conv | BatchNorm | Linear


def layer_params(layer: Layer) -> list[ParamSpec]:
    """The canonical tensors of one layer, in PyTorch ``state_dict`` order."""
    return layer.params()


@dataclass(frozen=True)
class Probe:
    """A point in the network whose output every framework can report.

    ``name`` is the canonical module name (the PyTorch module path). Probes are
    listed in execution order, so the first diverging probe is the culprit.
    """

    name: str
    stage: str | None = None  # set for the coarse stage outputs


@dataclass(frozen=True)
class Step:
    """One point of the shape walk: a probe or layer with its input and output spatial size.

    ``channels`` is the number of output channels (features, for the logits).
    """

    name: str
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    channels: int


class InputRule(NamedTuple):
    """What input a network takes, as plain values.

    A tuple, not the config: the models check their input inside ``forward``, which
    ``paddle.jit.to_static`` (SOT) traces, and SOT reads only a dataclass' fields, not its
    methods or class constants; a tuple of str/int/bool it follows like any Python value.
    ``exact``: the size must equal ``min_size`` (MiniModel's pooling + Dense fix it).
    """

    model: str
    in_channels: int
    min_size: int
    exact: bool
    label: str  # the network as the messages name it, e.g. "resnet18 with stem='cifar'"
    reason: str  # why the size rule is what it is


@dataclass(frozen=True)
class Counts:
    trainable: int
    bn_statistics: int


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output size of a convolution or pooling window along one axis (PyTorch's floor rule)."""
    return (size + 2 * padding - kernel) // stride + 1
