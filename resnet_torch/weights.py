"""Canonical weights in and out of a PyTorch model (names and layouts from :mod:`resnet_core.names`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from resnet_core import names, spec
from resnet_core.weights import check_weights


def config_of(model: nn.Module) -> spec.Config:
    cfg = getattr(model, "config", None)
    if not isinstance(cfg, spec.ModelConfig):
        raise TypeError(f"expected a resnet_torch model (ResNet18 or MiniModel), received {type(model).__name__}")
    return cfg


def export_weights(model: nn.Module) -> dict[str, np.ndarray]:
    """Every canonical tensor of ``model``, in canonical order and layout, as float32 numpy arrays."""
    cfg = config_of(model)
    sd = model.state_dict()
    return {
        p.name: names.from_framework(
            "torch", p.role, sd[names.framework_name("torch", p.module, p.role)].detach().cpu().numpy()
        )
        for p in spec.param_specs(cfg)
    }


def import_weights(model: nn.Module, weights: Mapping[str, np.ndarray]) -> None:
    """Load canonical ``weights`` into ``model``; strict, and all-or-nothing.

    Everything is validated before the first tensor is copied, so a bad set of
    weights leaves ``model`` untouched.
    """
    cfg = config_of(model)
    checked = check_weights(cfg, weights)
    sd = model.state_dict()
    with torch.no_grad():
        for p in spec.param_specs(cfg):
            dst = sd[names.framework_name("torch", p.module, p.role)]
            dst.copy_(torch.from_numpy(names.to_framework("torch", p.role, checked[p.name])))


def count_params(model: nn.Module) -> spec.Counts:
    """Trainable parameters and BN statistics, excluding PyTorch's num_batches_tracked."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return spec.Counts(trainable, stats)
