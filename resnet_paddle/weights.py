"""Canonical weights in and out of a Paddle model (names and layouts from :mod:`resnet_core.names`)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import paddle
from paddle import nn

from resnet_core import names, spec
from resnet_core.weights import check_weights


def config_of(model: paddle.nn.Layer) -> spec.Config:
    cfg = getattr(model, "config", None)
    if not isinstance(cfg, spec.ModelConfig):
        raise TypeError(f"expected a resnet_paddle model (ResNet18 or MiniModel), received {type(model).__name__}")
    return cfg


def export_weights(model: paddle.nn.Layer) -> dict[str, np.ndarray]:
    """Every canonical tensor of ``model``, in canonical order and layout, as float32 numpy arrays."""
    cfg = config_of(model)
    sd = model.state_dict()
    return {
        p.name: names.from_framework("paddle", p.role, sd[names.framework_name("paddle", p.module, p.role)].numpy())
        for p in spec.param_specs(cfg)
    }


def import_weights(model: paddle.nn.Layer, weights: Mapping[str, np.ndarray]) -> None:
    """Load canonical ``weights`` into ``model``; strict, and all-or-nothing.

    Everything is validated before the first tensor is set, so a bad set of
    weights leaves ``model`` untouched.
    """
    cfg = config_of(model)
    checked = check_weights(cfg, weights)
    sd = model.state_dict()
    for p in spec.param_specs(cfg):
        sd[names.framework_name("paddle", p.module, p.role)].set_value(
            names.to_framework("paddle", p.role, checked[p.name])
        )


def count_params(model: nn.Layer) -> spec.Counts:
    """Trainable parameters and BN statistics (Paddle's parameters() also lists BN _mean/_variance)."""
    trainable = sum(math.prod(p.shape) for p in model.parameters() if p.trainable)
    stats = sum(math.prod(v.shape) for n, v in model.state_dict().items() if n.endswith(("._mean", "._variance")))
    return spec.Counts(trainable, stats)
