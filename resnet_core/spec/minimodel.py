"""The Keras tutorial's pre-activation MiniModel (seed 001): 12 residual units, BN before each conv."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .config import ModelConfig, check_bool, check_positive_int
from .layers import BatchNorm, BatchNormSpec, Conv, InputRule, Layer, Linear, Probe, Step

# Defined by its Keras original: BatchNormalization() with epsilon 1e-3, momentum 0.99 in Keras terms.
MINIMODEL_BN = BatchNormSpec(epsilon=1e-3, momentum=0.01)

# (filters, pool) for unit1..unit12, exactly the sequence of the Keras tutorial.
MINIMODEL_UNITS = (
    (32, False), (32, False), (32, False),
    (64, True), (64, False), (64, False),
    (128, True), (128, False), (128, False),
    (256, True), (256, False), (256, False),
)  # fmt: skip
MINIMODEL_INPUT_SIZE = 32  # AveragePooling 4x4 + Flatten + Dense(256 -> classes) fix it
MINIMODEL_DROPOUT = 0.25
_GROUP_END = {"unit3": "group1", "unit6": "group2", "unit9": "group3", "unit12": "group4"}


@dataclass(frozen=True)
class UnitSpec:
    name: str  # e.g. "unit4"
    in_channels: int
    out_channels: int
    pool: bool  # 2x2 max-pool on the main path, 1x1 stride-2 conv (with bias) on the shortcut


@dataclass(frozen=True)
class MiniModelConfig(ModelConfig):
    """Keyword arguments of ``minimodel(...)`` in every framework."""

    model: ClassVar[str] = "minimodel"
    bn: ClassVar[BatchNormSpec] = MINIMODEL_BN
    in_channels: ClassVar[int] = 3  # RGB, fixed by the tutorial

    num_classes: int = 10
    softmax: bool = True

    def __post_init__(self) -> None:
        check_positive_int("num_classes", self.num_classes)
        check_bool("softmax", self.softmax)

    def units(self) -> list[UnitSpec]:
        units, in_ch = [], 32
        for i, (filters, pool) in enumerate(MINIMODEL_UNITS, start=1):
            units.append(UnitSpec(f"unit{i}", in_ch, filters, pool))
            in_ch = filters
        return units

    def layers(self) -> list[Layer]:
        bn = MINIMODEL_BN
        layers: list[Layer] = [Conv("stem.conv", 3, 32, 3, 1, 1, True)]
        for u in self.units():
            if u.pool:
                layers.append(Conv(f"{u.name}.shortcut", u.in_channels, u.out_channels, 1, 2, 0, True))
            layers += [
                BatchNorm(f"{u.name}.bn1", u.in_channels, bn),
                Conv(f"{u.name}.conv1", u.in_channels, u.out_channels, 3, 1, 1, True),
                BatchNorm(f"{u.name}.bn2", u.out_channels, bn),
                Conv(f"{u.name}.conv2", u.out_channels, u.out_channels, 3, 1, 1, True),
            ]
        layers += [BatchNorm("head.bn", 256, bn), Linear("head.fc", 256, self.num_classes)]
        return layers

    def probes(self) -> list[Probe]:
        out = [Probe("stem.conv", stage="stem")]
        for u in self.units():
            if u.pool:
                out += [Probe(f"{u.name}.pool"), Probe(f"{u.name}.shortcut")]
            out += [Probe(f"{u.name}.bn1"), Probe(f"{u.name}.conv1"), Probe(f"{u.name}.bn2"), Probe(f"{u.name}.conv2")]
            out.append(Probe(u.name, stage=_GROUP_END.get(u.name)))
        return out + [Probe("head.bn"), Probe("head.avgpool", stage="pool"), Probe("head.fc", stage="logits")]

    def walk(self, height: int, width: int) -> list[Step]:
        hw = (height, width)
        steps = [Step("stem.conv", hw, hw, 32)]
        for u in self.units():
            unit_in = hw
            if u.pool:
                hw = (hw[0] // 2, hw[1] // 2)  # 2x2 max-pool on the main path
                steps.append(Step(f"{u.name}.pool", unit_in, hw, u.in_channels))
                steps.append(Step(f"{u.name}.shortcut", unit_in, hw, u.out_channels))  # 1x1 stride 2
            steps += [
                Step(f"{u.name}.bn1", hw, hw, u.in_channels),
                Step(f"{u.name}.conv1", hw, hw, u.out_channels),
                Step(f"{u.name}.bn2", hw, hw, u.out_channels),
                Step(f"{u.name}.conv2", hw, hw, u.out_channels),
                Step(u.name, unit_in, hw, u.out_channels),
            ]
        steps.append(Step("head.bn", hw, hw, 256))
        pooled = (hw[0] // 4, hw[1] // 4)  # AveragePooling2D(4)
        steps.append(Step("head.avgpool", hw, pooled, 256))
        steps.append(Step("head.fc", (1, 1), (1, 1), self.num_classes))
        return steps

    def options_from_shapes(self, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
        fc = shapes.get("head.fc.weight", ())
        return {"num_classes": fc[0]} if len(fc) > 0 else {}

    @property
    def min_input_size(self) -> int:
        return MINIMODEL_INPUT_SIZE

    def input_rule(self) -> InputRule:
        return InputRule(
            self.model,
            self.in_channels,
            MINIMODEL_INPUT_SIZE,
            True,
            "minimodel",
            "its AveragePooling 4x4 + Dense fix the size",
        )
