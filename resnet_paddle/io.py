"""Load a Paddle model from any supported weights file; save to canonical or native (.pdparams)."""

from __future__ import annotations

import os
from typing import Any

import paddle

from resnet_core import convert

from .weights import config_of, export_weights


def load(path: str | os.PathLike, *, names: str | None = None, **overrides: Any) -> paddle.nn.Layer:
    """Build the model that ``path`` holds and load its weights.

    Any supported file: canonical ``.safetensors``, ``.pdparams`` (paddle.vision and
    the Paddle write-up's ResNet included), PyTorch and Keras files. Config fields
    the file does not state are inferred from the tensors; ``overrides`` win;
    ``names`` forces a naming scheme.
    """
    import resnet_paddle

    return convert.load_model(resnet_paddle, path, names, dict(overrides))


def save(model: paddle.nn.Layer, path: str | os.PathLike, *, overwrite: bool = True) -> None:
    """Write ``.safetensors`` (canonical) or ``.pdparams`` (``paddle.save(state_dict)``), by extension.

    The file loads back with ``model.set_state_dict(paddle.load(path))``.
    """
    def native(tmp: str) -> None:
        paddle.save(model.state_dict(), tmp)

    convert.save_model("paddle", path, config_of(model), lambda: export_weights(model), {"paddle": native}, overwrite=overwrite)
