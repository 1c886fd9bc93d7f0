"""What every model config is: builder options that carry their own behaviour.

A config is the keyword arguments of ``resnet18(...)`` / ``minimodel(...)`` in every
framework, and it knows its network: its layers, probe points, shape walk and input
rule. Code outside the spec asks the config; it never dispatches on the config's type.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from .layers import BatchNormSpec, Counts, InputRule, Layer, ParamSpec, Probe, Step


@dataclass(frozen=True)
class ModelConfig:
    """Base of every model config. Subclasses are frozen dataclasses of builder options.

    Every subclass also provides ``in_channels`` (a field or a class constant) and
    ``num_classes``.
    """

    model: ClassVar[str]  # the builder's name: "resnet18", "minimodel"
    bn: ClassVar[BatchNormSpec]  # BatchNorm constants of every BN layer of the model
    # The bool builder options that decide which tensors exist, so a file's names state them
    # (ResNet-18's conv_bias, shortcut_bn, shortcut_bias); every other option only changes shapes.
    name_options: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------ the network
    def layers(self) -> list[Layer]:
        """Every parametrised layer, in execution / ``state_dict`` order."""
        raise NotImplementedError

    def probes(self) -> list[Probe]:
        """Every probe point, in execution order."""
        raise NotImplementedError

    def walk(self, height: int, width: int) -> list[Step]:
        """The one shape walk: every layer and probe point with its input and output size."""
        raise NotImplementedError

    def options_from_shapes(self, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
        """The builder options that canonical tensor shapes state, for a file whose names matched ``self``.

        Options the names fixed (:attr:`name_options`) are kept; a tensor that is absent or of
        too low a rank states nothing (``check_weights`` reports it); ``ValueError`` for a shape that
        no option gives.
        """
        raise NotImplementedError

    @property
    def min_input_size(self) -> int:
        """Smallest spatial size accepted."""
        raise NotImplementedError

    def input_rule(self) -> InputRule:
        """What input this network takes, as plain values (see :class:`InputRule`)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ derived, the same for every model
    @classmethod
    def skeletons(cls) -> list[ModelConfig]:
        """One config per distinct set of tensor names: every combination of :attr:`name_options`.

        The defaults come first (then each option flipped, the last one fastest), so the plain
        network is the first candidate when a naming scheme looks for the closest match.
        """
        defaults = cls()
        values = [(getattr(defaults, o), not getattr(defaults, o)) for o in cls.name_options]
        return [cls(**dict(zip(cls.name_options, combo))) for combo in itertools.product(*values)]

    def param_specs(self) -> list[ParamSpec]:
        """Every canonical tensor, in PyTorch ``state_dict`` order."""
        return [p for layer in self.layers() for p in layer.params()]

    def stages(self) -> list[Probe]:
        return [p for p in self.probes() if p.stage]

    def counts(self) -> Counts:
        """Trainable parameters and BN moving statistics, counted the same way for every framework."""
        specs = self.param_specs()
        trainable = sum(math.prod(p.shape) for p in specs if p.trainable)
        stats = sum(math.prod(p.shape) for p in specs if not p.trainable)
        return Counts(trainable, stats)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, received {value!r}")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, received {value!r}")
