"""Analytic FLOP counts, from the specification alone.

One multiply-add (MAC) is two FLOPs. Counted: every convolution and the linear
layer (bias adds excluded, as is usual). Not counted: BatchNorm, ReLU, max/avg
pooling, residual adds, softmax and dropout; on these networks they are well
under 1 % of the MACs. A training step is counted as 3x the forward MACs (the
forward, the gradient with respect to the input and the gradient with respect to
the weights each cost one pass of multiply-adds).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ModelConfig
from .layers import Conv, Linear
from .shapes import check_input_shape

TRAIN_STEP_FACTOR = 3  # forward + input gradient + weight gradient


@dataclass(frozen=True)
class LayerMacs:
    name: str
    out_hw: tuple[int, int]
    macs: int


def layer_macs(cfg: ModelConfig, height: int, width: int) -> list[LayerMacs]:
    """MACs of every convolution and linear layer for one image of ``height`` x ``width``."""
    check_input_shape(cfg, (1, cfg.in_channels, height, width), "NCHW")
    steps = {s.name: s for s in cfg.walk(height, width)}
    out = []
    for layer in cfg.layers():
        if isinstance(layer, Conv):
            # The output size from the conv's own record (a strided 1x1 shortcut rounds up, a pool down).
            in_hw = steps[layer.name].in_hw
            out_hw = (layer.out_size(in_hw[0]), layer.out_size(in_hw[1]))
            out.append(LayerMacs(layer.name, out_hw, layer.macs(out_hw)))
        elif isinstance(layer, Linear):
            out.append(LayerMacs(layer.name, (1, 1), layer.macs((1, 1))))
    return out


def macs(cfg: ModelConfig, height: int, width: int) -> int:
    """Multiply-adds of one eval forward pass of one image."""
    return sum(m.macs for m in layer_macs(cfg, height, width))


def forward_flops(cfg: ModelConfig, height: int, width: int) -> int:
    """FLOPs (2 x MACs) of one eval forward pass of one image."""
    return 2 * macs(cfg, height, width)


def train_step_flops(cfg: ModelConfig, height: int, width: int) -> int:
    """FLOPs of one training step (forward + backward) of one image; see :data:`TRAIN_STEP_FACTOR`."""
    return TRAIN_STEP_FACTOR * forward_flops(cfg, height, width)
