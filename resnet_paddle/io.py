"""Load a Paddle model from any supported weights file; save to canonical or native (.pdparams).

The core reads and validates every file (:func:`resnet_core.porting.read`); this module
builds the model, loads the weights, and writes Paddle's own format itself. Nothing
here is handed to the core to call back.
"""

from __future__ import annotations

import os
from typing import Any

import paddle

from resnet_core import porting
from resnet_core.atomic import atomic_path

from .models import build
from .weights import config_of, export_weights, import_weights


def load(path: str | os.PathLike, *, names: str | None = None, **overrides: Any) -> paddle.nn.Layer:
    """Build the model that ``path`` holds and load its weights.

    Any supported file: canonical ``.safetensors``, ``.pdparams`` (paddle.vision and
    the Paddle write-up's ResNet included), PyTorch and Keras files. Config fields
    the file does not state are inferred from the tensors; ``overrides`` win;
    ``model="resnet18"`` expects that model; ``names`` forces a naming scheme.
    """
    model = overrides.pop("model", None)
    src = porting.read(path, names=names, model=model, overrides=overrides)
    net = build(src.model, initialize=False, **src.config.to_dict())
    import_weights(net, src.weights)
    return net


def save(model: paddle.nn.Layer, path: str | os.PathLike, *, overwrite: bool = True) -> None:
    """Write ``.safetensors`` (canonical) or ``.pdparams`` (``paddle.save(state_dict)``), by extension.

    The file loads back with ``model.set_state_dict(paddle.load(path))``.
    Another framework's format is refused: ``resnet-parity convert`` writes those.
    """
    fmt = porting.save_format(path, "paddle")
    if fmt.framework is None:
        porting.write_canonical(path, config_of(model), export_weights(model), "paddle", overwrite=overwrite)
        return
    with atomic_path(path, overwrite=overwrite) as tmp:
        paddle.save(model.state_dict(), tmp)
