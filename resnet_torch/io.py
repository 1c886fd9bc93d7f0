"""Load a PyTorch model from any supported weights file; save to canonical or native (.pt/.pth).

The core reads and validates every file (:func:`resnet_core.porting.read`); this module
builds the model, loads the weights, and writes PyTorch's own format itself. Nothing
here is handed to the core to call back.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from resnet_core import porting
from resnet_core.atomic import atomic_path

from .models import build
from .weights import config_of, export_weights, import_weights


def load(path: str | os.PathLike, *, names: str | None = None, **overrides: Any) -> nn.Module:
    """Build the model that ``path`` holds and load its weights.

    Any supported file: canonical ``.safetensors``, ``.pt``/``.pth`` (torchvision,
    pytorch-cifar checkpoints included), Keras and Paddle files. Config fields
    the file does not state are inferred from the tensors; ``overrides`` win
    (for example ``softmax=False``); ``model="resnet18"`` expects that model;
    ``names`` forces a naming scheme.
    """
    model = overrides.pop("model", None)
    src = porting.read(path, names=names, model=model, overrides=overrides)
    net = build(src.model, initialize=False, **src.config.to_dict())
    import_weights(net, src.weights)
    return net


def save(model: nn.Module, path: str | os.PathLike, *, overwrite: bool = True) -> None:
    """Write ``.safetensors`` (canonical) or ``.pt``/``.pth`` (a plain state_dict), by extension.

    The state_dict loads back with ``model.load_state_dict(torch.load(path))``.
    Another framework's format is refused: ``resnet-parity convert`` writes those.
    """
    fmt = porting.save_format(path, "torch")
    if fmt.framework is None:
        porting.write_canonical(path, config_of(model), export_weights(model), "torch", overwrite=overwrite)
        return
    with atomic_path(path, overwrite=overwrite) as tmp:
        torch.save(OrderedDict((k, v.detach().cpu()) for k, v in model.state_dict().items()), tmp)
