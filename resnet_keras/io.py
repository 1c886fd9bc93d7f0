"""Load a Keras model from any supported weights file; save to canonical or native (.weights.h5/.keras).

The core reads and validates every file (:func:`resnet_core.porting.read`); this module
builds the model, loads the weights, and writes Keras' own formats itself. Nothing
here is handed to the core to call back.
"""

from __future__ import annotations

import os
from typing import Any

import keras

from resnet_core import porting
from resnet_core.atomic import atomic_path

from .models import build
from .weights import config_of, export_weights, import_weights


def load(path: str | os.PathLike, *, names: str | None = None, **overrides: Any) -> keras.Model:
    """Build the model that ``path`` holds and load its weights.

    Any supported file: canonical ``.safetensors``, ``.weights.h5``, ``.keras``, the
    Keras tutorial's auto-named files, PyTorch and Paddle files. Config fields the
    file does not state are inferred from the tensors; ``overrides`` win;
    ``model="minimodel"`` expects that model; ``names`` forces a naming scheme.
    """
    model = overrides.pop("model", None)
    src = porting.read(path, names=names, model=model, overrides=overrides)
    net = build(src.model, initialize=False, **src.config.to_dict())
    import_weights(net, src.weights)
    return net


def save(model: keras.Model, path: str | os.PathLike, *, overwrite: bool = True) -> None:
    """Write ``.safetensors`` (canonical), ``.weights.h5`` (``save_weights``) or ``.keras`` (``save``), by extension.

    Native files load back with ``model.load_weights(path)``.
    Another framework's format is refused: ``resnet-parity convert`` writes those.
    """
    fmt = porting.save_format(path, "keras")
    if fmt.framework is None:
        porting.write_canonical(path, config_of(model), export_weights(model), "keras", overwrite=overwrite)
        return
    with atomic_path(path, overwrite=overwrite, named=True) as tmp:  # a real name with the suffix Keras insists on
        if fmt.key == "keras-weights":
            model.save_weights(tmp)
        else:
            model.save(tmp)
