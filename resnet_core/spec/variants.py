"""The model variants the suite, the report, the bench and the notebooks run: one table, as data.

In the spirit of timm's ``default_cfgs``: each variant states its builder options and every
size rule that anyone needs (eval sizes, the training size, the bench batch), so no other
module restates one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .config import ModelConfig


@dataclass(frozen=True)
class BenchSpec:
    """How ``resnet-parity bench`` times a variant: batch per device and builder options it overrides."""

    cpu_batch: int
    gpu_batch: int
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """One model variant: builder options and its sizes.

    ``eval_sizes``: eval-forward (height, width), the reference size first and then an odd,
    non-square one, which catches padding mistakes that square even sizes hide (and the other
    way round: TF's 'same' at stride 2 is symmetric on odd sizes and lopsided on even ones).
    ``train_size``: train-mode forward, gradients, optimizer steps.
    """

    id: str
    model: str
    kwargs: Mapping[str, Any]
    eval_sizes: tuple[tuple[int, int], ...]
    train_size: tuple[int, int]
    bench: BenchSpec | None = None

    @property
    def config(self) -> ModelConfig:
        from . import make_config  # the registry lives in the package

        return make_config(self.model, **self.kwargs)

    @property
    def reference_size(self) -> tuple[int, int]:
        """The size the network was designed for (the first eval size)."""
        return self.eval_sizes[0]


_CIFAR_SIZES = ((32, 32), (45, 37))
_TABLE = (
    Variant("resnet18-cifar", "resnet18", {"stem": "cifar"}, _CIFAR_SIZES, (32, 32), BenchSpec(32, 256)),
    Variant(
        "resnet18-cifar-shortcut_bias", "resnet18", {"stem": "cifar", "shortcut_bias": True}, _CIFAR_SIZES, (32, 32)
    ),
    # Training at an odd size: float64 backward at 224x224 costs 1.2-1.8 s per framework (measured),
    # and 65x57 still sends odd and even sizes through every stride-2 layer.
    Variant(
        "resnet18-imagenet",
        "resnet18",
        {"stem": "imagenet", "num_classes": 1000},
        ((224, 224), (199, 173)),
        (65, 57),
        BenchSpec(8, 64),
    ),
    # d2l's ResNet-18 on Fashion-MNIST (seed 003): 1 channel, 10 classes, every conv with its default
    # bias, no BN after the 1x1 shortcut. 224x224 is the size the seed resizes to and prints shapes at;
    # 97x75 sends odd and even sizes through every stride-2 layer (49x38, 25x19, 13x10, 7x5, 4x3).
    # Training at 65x49: odd, cheap, and layer4 still sees 3x2 positions per image. No bench batch:
    # its compute is resnet18-imagenet's less two thirds of the stem conv and the 1000-way fc.
    Variant(
        "resnet18-d2l",
        "resnet18",
        {"stem": "imagenet", "in_channels": 1, "conv_bias": True, "shortcut_bias": True, "shortcut_bn": False},
        ((224, 224), (97, 75)),
        (65, 49),
    ),
    # Its AveragePooling 4x4 + Dense fix the size. The bench takes logits: the softmax costs
    # nothing measurable and the training loss wants logits.
    Variant("minimodel", "minimodel", {}, ((32, 32),), (32, 32), BenchSpec(32, 256, {"softmax": False})),
)

VARIANTS: Mapping[str, Variant] = MappingProxyType({v.id: v for v in _TABLE})


def variant(variant_id: str) -> Variant:
    """The variant with this id; the error lists the known ids."""
    if variant_id not in VARIANTS:
        raise ValueError(f"unknown variant {variant_id!r}: expected one of {list(VARIANTS)}")
    return VARIANTS[variant_id]
