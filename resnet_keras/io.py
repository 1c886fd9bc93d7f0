"""Load a Keras model from any supported weights file; save to canonical or native (.weights.h5/.keras)."""

from __future__ import annotations

import os
from typing import Any

import keras

from resnet_core import convert

from .weights import config_of, export_weights


def load(path: str | os.PathLike, *, names: str | None = None, **overrides: Any) -> keras.Model:
    """Build the model that ``path`` holds and load its weights.

    Any supported file: canonical ``.safetensors``, ``.weights.h5``, ``.keras``, the
    Keras tutorial's auto-named files, PyTorch and Paddle files. Config fields the
    file does not state are inferred from the tensors; ``overrides`` win;
    ``names`` forces a naming scheme.
    """
    import resnet_keras

    return convert.load_model(resnet_keras, path, names, dict(overrides))


def save(model: keras.Model, path: str | os.PathLike, *, overwrite: bool = True) -> None:
    """Write ``.safetensors`` (canonical), ``.weights.h5`` (``save_weights``) or ``.keras`` (``save``), by extension.

    Native files load back with ``model.load_weights(path)``.
    """
    native = {"keras-weights": model.save_weights, "keras": model.save}
    convert.save_model("keras", path, config_of(model), lambda: export_weights(model), native, overwrite=overwrite)
