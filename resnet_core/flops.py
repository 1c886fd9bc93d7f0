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

from . import spec

TRAIN_STEP_FACTOR = 3  # forward + input gradient + weight gradient


@dataclass(frozen=True)
class LayerMacs:
    name: str
    out_hw: tuple[int, int]
    macs: int


def _conv_macs(c: spec.Conv, in_hw: tuple[int, int]) -> LayerMacs:
    h = spec._conv_out(in_hw[0], c.kernel, c.stride, c.padding)
    w = spec._conv_out(in_hw[1], c.kernel, c.stride, c.padding)
    return LayerMacs(c.name, (h, w), c.out_channels * h * w * c.in_channels * c.kernel * c.kernel)


def _conv_input_sizes(cfg: spec.Config, height: int, width: int) -> dict[str, tuple[int, int]]:
    """Spatial size of the input of every convolution, walking the network as the spec builds it."""
    convs = {layer.name: layer for layer in spec.layers(cfg) if isinstance(layer, spec.Conv)}
    sizes: dict[str, tuple[int, int]] = {}
    if isinstance(cfg, spec.ResNet18Config):
        sizes["conv1"] = (height, width)
        hw = _conv_macs(convs["conv1"], (height, width)).out_hw
        if cfg.stem_spec.maxpool:
            hw = (spec._conv_out(hw[0], 3, 2, 1), spec._conv_out(hw[1], 3, 2, 1))
        for b in spec.resnet18_blocks(cfg):
            sizes[f"{b.name}.conv1"] = hw
            if b.projection:
                sizes[f"{b.name}.downsample.0"] = hw
            hw = _conv_macs(convs[f"{b.name}.conv1"], hw).out_hw
            sizes[f"{b.name}.conv2"] = hw
        return sizes
    hw = (height, width)
    sizes["stem.conv"] = hw
    for u in spec.minimodel_units(cfg):
        if u.pool:
            sizes[f"{u.name}.shortcut"] = hw  # the shortcut sees the un-pooled input
            hw = (hw[0] // 2, hw[1] // 2)  # 2x2 max-pool on the main path
        sizes[f"{u.name}.conv1"] = hw
        sizes[f"{u.name}.conv2"] = hw
    return sizes


def layer_macs(cfg: spec.Config, height: int, width: int) -> list[LayerMacs]:
    """MACs of every convolution and linear layer for one image of ``height`` x ``width``."""
    in_ch = cfg.in_channels if isinstance(cfg, spec.ResNet18Config) else 3
    shape = (1, in_ch, height, width)
    spec.check_input_shape(cfg, shape, "NCHW")
    sizes = _conv_input_sizes(cfg, height, width)
    out = []
    for layer in spec.layers(cfg):
        if isinstance(layer, spec.Conv):
            out.append(_conv_macs(layer, sizes[layer.name]))
        elif isinstance(layer, spec.Linear):
            out.append(LayerMacs(layer.name, (1, 1), layer.in_features * layer.out_features))
    return out


def macs(cfg: spec.Config, height: int, width: int) -> int:
    """Multiply-adds of one eval forward pass of one image."""
    return sum(m.macs for m in layer_macs(cfg, height, width))


def forward_flops(cfg: spec.Config, height: int, width: int) -> int:
    """FLOPs (2 x MACs) of one eval forward pass of one image."""
    return 2 * macs(cfg, height, width)


def train_step_flops(cfg: spec.Config, height: int, width: int) -> int:
    """FLOPs of one training step (forward + backward) of one image; see :data:`TRAIN_STEP_FACTOR`."""
    return TRAIN_STEP_FACTOR * forward_flops(cfg, height, width)
