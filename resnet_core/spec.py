"""The one specification of every architecture, framework-free.

Every framework package builds its networks from the records defined here, and
every test checks the frameworks against them. Shapes are canonical: PyTorch's
layout (OIHW conv kernels, [out, in] linear weights, NCHW activations).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Union

MODELS = ("resnet18", "minimodel")


# --------------------------------------------------------------------------- BatchNorm
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


# ResNet-18 uses PyTorch's defaults; MiniModel is defined by its Keras original
# (BatchNormalization() with epsilon 1e-3, momentum 0.99 in Keras terms).
RESNET_BN = BatchNormSpec(epsilon=1e-5, momentum=0.1)
MINIMODEL_BN = BatchNormSpec(epsilon=1e-3, momentum=0.01)


# --------------------------------------------------------------------------- layers
@dataclass(frozen=True)
class Conv:
    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int  # symmetric zero padding on every side, as in PyTorch/Paddle
    bias: bool


@dataclass(frozen=True)
class BatchNorm:
    name: str
    channels: int
    bn: BatchNormSpec


@dataclass(frozen=True)
class Linear:
    name: str
    in_features: int
    out_features: int


Layer = Union[Conv, BatchNorm, Linear]


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


def layer_params(layer: Layer) -> list[ParamSpec]:
    """The canonical tensors of one layer, in PyTorch ``state_dict`` order."""
    n = layer.name
    if isinstance(layer, Conv):
        k = layer.kernel
        out = [ParamSpec(f"{n}.weight", (layer.out_channels, layer.in_channels, k, k), "conv.weight")]
        if layer.bias:
            out.append(ParamSpec(f"{n}.bias", (layer.out_channels,), "conv.bias"))
        return out
    if isinstance(layer, BatchNorm):
        c = (layer.channels,)
        return [
            ParamSpec(f"{n}.weight", c, "bn.weight"),
            ParamSpec(f"{n}.bias", c, "bn.bias"),
            ParamSpec(f"{n}.running_mean", c, "bn.running_mean"),
            ParamSpec(f"{n}.running_var", c, "bn.running_var"),
        ]
    if isinstance(layer, Linear):
        return [
            ParamSpec(f"{n}.weight", (layer.out_features, layer.in_features), "linear.weight"),
            ParamSpec(f"{n}.bias", (layer.out_features,), "linear.bias"),
        ]
    raise TypeError(f"not a layer spec: {layer!r}")


# --------------------------------------------------------------------------- ResNet-18
@dataclass(frozen=True)
class StemSpec:
    kernel: int
    stride: int
    padding: int
    maxpool: bool  # 3x3 stride-2 max-pool with padding 1 after the stem ReLU


STEMS = {
    # pytorch-cifar and the Paddle write-up: 3x3 stride 1, no max-pool.
    "cifar": StemSpec(kernel=3, stride=1, padding=1, maxpool=False),
    # torchvision / paddle.vision: 7x7 stride 2 pad 3, then max-pool 3x3 s2 p1.
    "imagenet": StemSpec(kernel=7, stride=2, padding=3, maxpool=True),
}

RESNET18_STAGES = ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2))  # (width, blocks, stride)


@dataclass(frozen=True)
class ResNet18Config:
    """Keyword arguments of ``resnet18(...)`` in every framework."""

    num_classes: int = 10
    stem: str = "cifar"
    in_channels: int = 3
    shortcut_bias: bool = False

    def __post_init__(self) -> None:
        if self.stem not in STEMS:
            raise ValueError(f"unknown stem {self.stem!r}: expected one of {sorted(STEMS)}")
        _check_positive_int("num_classes", self.num_classes)
        _check_positive_int("in_channels", self.in_channels)
        if not isinstance(self.shortcut_bias, bool):
            raise ValueError(f"shortcut_bias must be a bool, received {self.shortcut_bias!r}")

    @property
    def stem_spec(self) -> StemSpec:
        return STEMS[self.stem]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BasicBlockSpec:
    name: str  # e.g. "layer2.0"
    in_channels: int
    out_channels: int
    stride: int
    projection: bool  # 1x1 conv + BN shortcut ("downsample") instead of identity


def resnet18_blocks(cfg: ResNet18Config) -> list[BasicBlockSpec]:
    blocks = []
    in_ch = 64
    for i, (width, n_blocks, stride) in enumerate(RESNET18_STAGES, start=1):
        for j in range(n_blocks):
            s = stride if j == 0 else 1
            blocks.append(BasicBlockSpec(f"layer{i}.{j}", in_ch, width, s, s != 1 or in_ch != width))
            in_ch = width
    return blocks


def resnet18_layers(cfg: ResNet18Config) -> list[Layer]:
    st = cfg.stem_spec
    layers: list[Layer] = [
        Conv("conv1", cfg.in_channels, 64, st.kernel, st.stride, st.padding, False),
        BatchNorm("bn1", 64, RESNET_BN),
    ]
    for b in resnet18_blocks(cfg):
        layers += [
            Conv(f"{b.name}.conv1", b.in_channels, b.out_channels, 3, b.stride, 1, False),
            BatchNorm(f"{b.name}.bn1", b.out_channels, RESNET_BN),
            Conv(f"{b.name}.conv2", b.out_channels, b.out_channels, 3, 1, 1, False),
            BatchNorm(f"{b.name}.bn2", b.out_channels, RESNET_BN),
        ]
        if b.projection:
            layers += [
                Conv(f"{b.name}.downsample.0", b.in_channels, b.out_channels, 1, b.stride, 0, cfg.shortcut_bias),
                BatchNorm(f"{b.name}.downsample.1", b.out_channels, RESNET_BN),
            ]
    layers.append(Linear("fc", 512, cfg.num_classes))
    return layers


# --------------------------------------------------------------------------- MiniModel
# (filters, pool) for unit1..unit12, exactly the sequence of the Keras tutorial.
MINIMODEL_UNITS = (
    (32, False), (32, False), (32, False),
    (64, True), (64, False), (64, False),
    (128, True), (128, False), (128, False),
    (256, True), (256, False), (256, False),
)
MINIMODEL_INPUT_SIZE = 32  # AveragePooling 4x4 + Flatten + Dense(256 -> classes) fix it
MINIMODEL_DROPOUT = 0.25


@dataclass(frozen=True)
class MiniModelConfig:
    """Keyword arguments of ``minimodel(...)`` in every framework."""

    num_classes: int = 10
    softmax: bool = True

    def __post_init__(self) -> None:
        _check_positive_int("num_classes", self.num_classes)
        if not isinstance(self.softmax, bool):
            raise ValueError(f"softmax must be a bool, received {self.softmax!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UnitSpec:
    name: str  # e.g. "unit4"
    in_channels: int
    out_channels: int
    pool: bool  # 2x2 max-pool on the main path, 1x1 stride-2 conv (with bias) on the shortcut


def minimodel_units(cfg: MiniModelConfig | None = None) -> list[UnitSpec]:
    units, in_ch = [], 32
    for i, (filters, pool) in enumerate(MINIMODEL_UNITS, start=1):
        units.append(UnitSpec(f"unit{i}", in_ch, filters, pool))
        in_ch = filters
    return units


def minimodel_layers(cfg: MiniModelConfig) -> list[Layer]:
    bn = MINIMODEL_BN
    layers: list[Layer] = [Conv("stem.conv", 3, 32, 3, 1, 1, True)]
    for u in minimodel_units(cfg):
        if u.pool:
            layers.append(Conv(f"{u.name}.shortcut", u.in_channels, u.out_channels, 1, 2, 0, True))
        layers += [
            BatchNorm(f"{u.name}.bn1", u.in_channels, bn),
            Conv(f"{u.name}.conv1", u.in_channels, u.out_channels, 3, 1, 1, True),
            BatchNorm(f"{u.name}.bn2", u.out_channels, bn),
            Conv(f"{u.name}.conv2", u.out_channels, u.out_channels, 3, 1, 1, True),
        ]
    layers += [BatchNorm("head.bn", 256, bn), Linear("head.fc", 256, cfg.num_classes)]
    return layers


# --------------------------------------------------------------------------- generic API
Config = Union[ResNet18Config, MiniModelConfig]
CONFIGS: dict[str, type] = {"resnet18": ResNet18Config, "minimodel": MiniModelConfig}

# The variants the test-suite and the report run: (model, config kwargs, id).
VARIANTS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("resnet18", {"stem": "cifar"}, "resnet18-cifar"),
    ("resnet18", {"stem": "cifar", "shortcut_bias": True}, "resnet18-cifar-shortcut_bias"),
    ("resnet18", {"stem": "imagenet", "num_classes": 1000}, "resnet18-imagenet"),
    ("minimodel", {}, "minimodel"),
)


def make_config(model: str, **kwargs: Any) -> Config:
    """Build and validate the config of ``model`` from builder keyword arguments."""
    if model not in CONFIGS:
        raise ValueError(f"unknown model {model!r}: expected one of {list(MODELS)}")
    cls = CONFIGS[model]
    allowed = set(cls.__dataclass_fields__)
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {model}: expected a subset of {sorted(allowed)}")
    return cls(**kwargs)


def variant_config(variant: str) -> tuple[str, dict[str, Any], Config]:
    """(model, builder kwargs, config) of a variant id from :data:`VARIANTS`."""
    for model, kwargs, vid in VARIANTS:
        if vid == variant:
            return model, dict(kwargs), make_config(model, **kwargs)
    raise ValueError(f"unknown variant {variant!r}: expected one of {[v for _, _, v in VARIANTS]}")


def model_name(cfg: Config) -> str:
    return "resnet18" if isinstance(cfg, ResNet18Config) else "minimodel"


def layers(cfg: Config) -> list[Layer]:
    """Every parametrised layer of the network, in execution/state_dict order."""
    return resnet18_layers(cfg) if isinstance(cfg, ResNet18Config) else minimodel_layers(cfg)


def param_specs(cfg: Config) -> list[ParamSpec]:
    """Every canonical tensor, in PyTorch ``state_dict`` order."""
    return [p for layer in layers(cfg) for p in layer_params(layer)]


def bn_spec(cfg: Config) -> BatchNormSpec:
    return RESNET_BN if isinstance(cfg, ResNet18Config) else MINIMODEL_BN


@dataclass(frozen=True)
class Counts:
    trainable: int
    bn_statistics: int


def counts(cfg: Config) -> Counts:
    """Trainable parameters and BN moving statistics, counted the same way for every framework."""
    specs = param_specs(cfg)
    trainable = sum(math.prod(p.shape) for p in specs if p.trainable)
    stats = sum(math.prod(p.shape) for p in specs if not p.trainable)
    return Counts(trainable, stats)


# --------------------------------------------------------------------------- probes
@dataclass(frozen=True)
class Probe:
    """A point in the network whose output every framework can report.

    ``name`` is the canonical module name (the PyTorch module path). Probes are
    listed in execution order, so the first diverging probe is the culprit.
    """

    name: str
    stage: str | None = None  # set for the coarse stage outputs


def probes(cfg: Config) -> list[Probe]:
    if isinstance(cfg, ResNet18Config):
        out = [Probe("conv1"), Probe("bn1"), Probe("relu"), Probe("maxpool", stage="stem")]
        last = {f"layer{i}.1": f"layer{i}" for i in range(1, 5)}
        for b in resnet18_blocks(cfg):
            out += [Probe(f"{b.name}.conv1"), Probe(f"{b.name}.bn1"), Probe(f"{b.name}.conv2"), Probe(f"{b.name}.bn2")]
            if b.projection:
                out += [Probe(f"{b.name}.downsample.0"), Probe(f"{b.name}.downsample.1")]
            out.append(Probe(b.name, stage=last.get(b.name)))
        return out + [Probe("avgpool", stage="pool"), Probe("fc", stage="logits")]
    out = [Probe("stem.conv", stage="stem")]
    stage_end = {"unit3": "group1", "unit6": "group2", "unit9": "group3", "unit12": "group4"}
    for u in minimodel_units(cfg):
        if u.pool:
            out += [Probe(f"{u.name}.pool"), Probe(f"{u.name}.shortcut")]
        out += [Probe(f"{u.name}.bn1"), Probe(f"{u.name}.conv1"), Probe(f"{u.name}.bn2"), Probe(f"{u.name}.conv2")]
        out.append(Probe(u.name, stage=stage_end.get(u.name)))
    return out + [Probe("head.bn"), Probe("head.avgpool", stage="pool"), Probe("head.fc", stage="logits")]


def stages(cfg: Config) -> list[Probe]:
    return [p for p in probes(cfg) if p.stage]


# --------------------------------------------------------------------------- shapes
def _conv_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def min_input_size(cfg: Config) -> int:
    """Smallest spatial size accepted: the network's total stride, so the last stage sees a full step."""
    if isinstance(cfg, MiniModelConfig):
        return MINIMODEL_INPUT_SIZE
    return 32 if cfg.stem_spec.maxpool else 8


def stage_shapes(cfg: Config, height: int, width: int) -> dict[str, tuple[int, ...]]:
    """Per-sample NCHW shape after each stage, computed from the specification alone."""
    if isinstance(cfg, MiniModelConfig):
        h, w = height, width
        shapes = {"stem": (32, h, w)}
        for g, c in zip(("group1", "group2", "group3", "group4"), (32, 64, 128, 256)):
            if g != "group1":
                h, w = h // 2, w // 2
            shapes[g] = (c, h, w)
        shapes["pool"] = (256, h // 4, w // 4)
        shapes["logits"] = (cfg.num_classes,)
        return shapes
    st = cfg.stem_spec
    h, w = _conv_out(height, st.kernel, st.stride, st.padding), _conv_out(width, st.kernel, st.stride, st.padding)
    if st.maxpool:
        h, w = _conv_out(h, 3, 2, 1), _conv_out(w, 3, 2, 1)
    shapes = {"stem": (64, h, w)}
    for i, (width_, _, stride) in enumerate(RESNET18_STAGES, start=1):
        h, w = _conv_out(h, 3, stride, 1), _conv_out(w, 3, stride, 1)
        shapes[f"layer{i}"] = (width_, h, w)
    shapes["pool"] = (512, 1, 1)
    shapes["logits"] = (cfg.num_classes,)
    return shapes


def check_input_shape(cfg: Config, shape: tuple, layout: str) -> None:
    """Raise ``ValueError`` saying what was expected and what was received.

    ``layout`` is ``"NCHW"`` (PyTorch, Paddle) or ``"NHWC"`` (Keras). Unknown
    (``None``) dimensions, as in symbolic Keras shapes, are not checked.
    """
    shape = tuple(shape)
    name = model_name(cfg)
    in_ch = cfg.in_channels if isinstance(cfg, ResNet18Config) else 3
    want = f"(batch, {in_ch}, H, W)" if layout == "NCHW" else f"(batch, H, W, {in_ch})"
    if len(shape) != 4:
        raise ValueError(f"{name} expects a 4-D {layout} input {want}; received a {len(shape)}-D input of shape {shape}")
    c, h, w = (shape[1], shape[2], shape[3]) if layout == "NCHW" else (shape[3], shape[1], shape[2])
    if c is not None and c != in_ch:
        raise ValueError(f"{name} expects {in_ch} input channels in {layout} layout {want}; received {c} channels (input shape {shape})")
    lo = min_input_size(cfg)
    if isinstance(cfg, MiniModelConfig):
        if (h is not None and h != lo) or (w is not None and w != lo):
            raise ValueError(f"minimodel expects {lo}x{lo} images (its AveragePooling 4x4 + Dense fix the size); received {h}x{w} (input shape {shape})")
        return
    for dim, v in (("height", h), ("width", w)):
        if v is not None and v < lo:
            raise ValueError(
                f"resnet18 with stem={cfg.stem!r} expects images of at least {lo}x{lo} (its total stride); "
                f"received {dim} {v} (input shape {shape})"
            )


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, received {value!r}")

