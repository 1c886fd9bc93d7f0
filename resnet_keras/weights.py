"""Canonical weights in and out of a Keras model (names and layouts from :mod:`resnet_core.names`)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import keras
import numpy as np

from resnet_core import names, spec
from resnet_core.weights import check_weights


def config_of(model: keras.Model) -> spec.Config:
    cfg = getattr(model, "config", None)
    if not isinstance(cfg, spec.ModelConfig):
        raise TypeError(f"expected a resnet_keras model (ResNet18 or MiniModel), received {type(model).__name__}")
    return cfg


def variable(model: keras.Model, p: spec.ParamSpec) -> keras.Variable:
    """The Keras variable that holds canonical tensor ``p`` (in Keras' layout)."""
    # Keras layer = canonical module name by rule (names.keras_layer); variable attribute = the role's Keras slot.
    return getattr(model.get_layer(names.keras_layer(p.module)), names.ROLES[p.role].keras)


def export_weights(model: keras.Model) -> dict[str, np.ndarray]:
    """Every canonical tensor of ``model``, in canonical order and layout, as float32 numpy arrays."""
    cfg = config_of(model)
    return {
        p.name: names.from_framework("keras", p.role, keras.ops.convert_to_numpy(variable(model, p)))
        for p in spec.param_specs(cfg)
    }


def import_weights(model: keras.Model, weights: Mapping[str, np.ndarray]) -> None:
    """Load canonical ``weights`` into ``model``; strict, and all-or-nothing.

    Everything is validated before the first variable is assigned, so a bad set
    of weights leaves ``model`` untouched.
    """
    cfg = config_of(model)
    checked = check_weights(cfg, weights)
    for p in spec.param_specs(cfg):
        variable(model, p).assign(names.to_framework("keras", p.role, checked[p.name]))


def count_params(model: keras.Model) -> spec.Counts:
    """Trainable parameters and BN moving statistics (Keras' count_params() lumps them together)."""
    trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
    stats = sum(
        math.prod(v.shape) for v in model.non_trainable_weights if v.path.endswith(("moving_mean", "moving_variance"))
    )
    return spec.Counts(trainable, stats)
