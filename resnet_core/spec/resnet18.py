"""ResNet-18 (torchvision's BasicBlock network) with a CIFAR or an ImageNet stem.

Three builder options change which tensors exist (and so the names a file holds), each
a variation that real code has: ``conv_bias`` (a bias on the stem conv and on both 3x3
convs of every block, PyTorch's ``nn.Conv2d`` default that d2l keeps), ``shortcut_bias``
(a bias on the 1x1 shortcut conv) and ``shortcut_bn`` (a BatchNorm after it; d2l's
``Residual`` has none). Names stay torchvision's: d2l's ``conv3`` is ``layerN.0.downsample.0``,
and without the BN there is no ``downsample.1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .config import ModelConfig, check_bool, check_positive_int
from .layers import BatchNorm, BatchNormSpec, Conv, InputRule, Layer, Linear, Probe, Step, conv_out

# PyTorch's defaults.
RESNET_BN = BatchNormSpec(epsilon=1e-5, momentum=0.1)


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
class BasicBlockSpec:
    name: str  # e.g. "layer2.0"
    in_channels: int
    out_channels: int
    stride: int
    projection: bool  # 1x1 conv (+ BN unless shortcut_bn=False) shortcut ("downsample") instead of identity


@dataclass(frozen=True)
class ResNet18Config(ModelConfig):
    """Keyword arguments of ``resnet18(...)`` in every framework."""

    model: ClassVar[str] = "resnet18"
    bn: ClassVar[BatchNormSpec] = RESNET_BN
    name_options: ClassVar[tuple[str, ...]] = ("conv_bias", "shortcut_bn", "shortcut_bias")

    num_classes: int = 10
    stem: str = "cifar"
    in_channels: int = 3
    shortcut_bias: bool = False
    conv_bias: bool = False
    shortcut_bn: bool = True

    def __post_init__(self) -> None:
        if self.stem not in STEMS:
            raise ValueError(f"unknown stem {self.stem!r}: expected one of {sorted(STEMS)}")
        check_positive_int("num_classes", self.num_classes)
        check_positive_int("in_channels", self.in_channels)
        check_bool("shortcut_bias", self.shortcut_bias)
        check_bool("conv_bias", self.conv_bias)
        check_bool("shortcut_bn", self.shortcut_bn)

    @property
    def stem_spec(self) -> StemSpec:
        return STEMS[self.stem]

    def blocks(self) -> list[BasicBlockSpec]:
        blocks, in_ch = [], 64
        for i, (width, n_blocks, stride) in enumerate(RESNET18_STAGES, start=1):
            for j in range(n_blocks):
                s = stride if j == 0 else 1
                blocks.append(BasicBlockSpec(f"layer{i}.{j}", in_ch, width, s, s != 1 or in_ch != width))
                in_ch = width
        return blocks

    def layers(self) -> list[Layer]:
        st = self.stem_spec
        layers: list[Layer] = [
            Conv("conv1", self.in_channels, 64, st.kernel, st.stride, st.padding, self.conv_bias),
            BatchNorm("bn1", 64, RESNET_BN),
        ]
        for b in self.blocks():
            layers += [
                Conv(f"{b.name}.conv1", b.in_channels, b.out_channels, 3, b.stride, 1, self.conv_bias),
                BatchNorm(f"{b.name}.bn1", b.out_channels, RESNET_BN),
                Conv(f"{b.name}.conv2", b.out_channels, b.out_channels, 3, 1, 1, self.conv_bias),
                BatchNorm(f"{b.name}.bn2", b.out_channels, RESNET_BN),
            ]
            if b.projection:
                layers.append(
                    Conv(f"{b.name}.downsample.0", b.in_channels, b.out_channels, 1, b.stride, 0, self.shortcut_bias)
                )
                if self.shortcut_bn:
                    layers.append(BatchNorm(f"{b.name}.downsample.1", b.out_channels, RESNET_BN))
        layers.append(Linear("fc", 512, self.num_classes))
        return layers

    def probes(self) -> list[Probe]:
        out = [Probe("conv1"), Probe("bn1"), Probe("relu"), Probe("maxpool", stage="stem")]
        last = {f"layer{i}.1": f"layer{i}" for i in range(1, 5)}
        for b in self.blocks():
            out += [Probe(f"{b.name}.conv1"), Probe(f"{b.name}.bn1"), Probe(f"{b.name}.conv2"), Probe(f"{b.name}.bn2")]
            if b.projection:
                out.append(Probe(f"{b.name}.downsample.0"))
                if self.shortcut_bn:
                    out.append(Probe(f"{b.name}.downsample.1"))
            out.append(Probe(b.name, stage=last.get(b.name)))
        return out + [Probe("avgpool", stage="pool"), Probe("fc", stage="logits")]

    def walk(self, height: int, width: int) -> list[Step]:
        convs = {layer.name: layer for layer in self.layers() if isinstance(layer, Conv)}
        steps: list[Step] = []

        def conv(name: str, hw: tuple[int, int]) -> tuple[int, int]:
            c = convs[name]
            out = (c.out_size(hw[0]), c.out_size(hw[1]))
            steps.append(Step(name, hw, out, c.out_channels))
            return out

        def same(name: str, hw: tuple[int, int], channels: int) -> None:
            steps.append(Step(name, hw, hw, channels))

        hw = conv("conv1", (height, width))
        same("bn1", hw, 64)
        same("relu", hw, 64)
        pooled = (conv_out(hw[0], 3, 2, 1), conv_out(hw[1], 3, 2, 1)) if self.stem_spec.maxpool else hw
        steps.append(Step("maxpool", hw, pooled, 64))
        hw = pooled
        for b in self.blocks():
            block_in = hw
            hw = conv(f"{b.name}.conv1", block_in)
            same(f"{b.name}.bn1", hw, b.out_channels)
            hw = conv(f"{b.name}.conv2", hw)
            same(f"{b.name}.bn2", hw, b.out_channels)
            if b.projection:
                conv(f"{b.name}.downsample.0", block_in)
                if self.shortcut_bn:
                    same(f"{b.name}.downsample.1", hw, b.out_channels)
            steps.append(Step(b.name, block_in, hw, b.out_channels))
        steps.append(Step("avgpool", hw, (1, 1), 512))
        steps.append(Step("fc", (1, 1), (1, 1), self.num_classes))
        return steps

    def options_from_shapes(self, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
        options: dict[str, Any] = {k: getattr(self, k) for k in self.name_options}
        fc, conv1 = shapes.get("fc.weight", ()), shapes.get("conv1.weight", ())
        if len(fc) > 0:
            options["num_classes"] = fc[0]
        if len(conv1) > 1:
            options["in_channels"] = conv1[1]
        if len(conv1) > 2:
            stems = {st.kernel: name for name, st in STEMS.items()}
            k = conv1[2]
            if k not in stems:
                known = ", ".join(f"{kk}x{kk} ({s})" for kk, s in stems.items())
                raise ValueError(f"conv1 has a {k}x{k} kernel, which matches no stem: expected {known}")
            options["stem"] = stems[k]
        return options

    @property
    def min_input_size(self) -> int:
        """The network's total stride, so the last stage sees a full step."""
        return 32 if self.stem_spec.maxpool else 8

    def input_rule(self) -> InputRule:
        return InputRule(
            self.model,
            self.in_channels,
            self.min_input_size,
            False,
            f"resnet18 with stem={self.stem!r}",
            "its total stride",
        )
