"""Load a PyTorch model from any supported weights file; save to canonical or native (.pt/.pth)."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from resnet_core import convert

from .weights import config_of, export_weights


def load(path: str | os.PathLike, *, names: str | None = None, **overrides: Any) -> nn.Module:
    """Build the model that ``path`` holds and load its weights.

    Any supported file: canonical ``.safetensors``, ``.pt``/``.pth`` (torchvision,
    pytorch-cifar checkpoints included), Keras and Paddle files. Config fields
    the file does not state are inferred from the tensors; ``overrides`` win
    (for example ``softmax=False``); ``names`` forces a naming scheme.
    """
    import resnet_torch

    return convert.load_model(resnet_torch, path, names, dict(overrides))


def save(model: nn.Module, path: str | os.PathLike, *, overwrite: bool = True) -> None:
    """Write ``.safetensors`` (canonical) or ``.pt``/``.pth`` (a plain state_dict), by extension.

    The state_dict loads back with ``model.load_state_dict(torch.load(path))``.
    """
    def native(tmp: str) -> None:
        torch.save(OrderedDict((k, v.detach().cpu()) for k, v in model.state_dict().items()), tmp)

    convert.save_model("torch", path, config_of(model), lambda: export_weights(model), {"torch": native}, overwrite=overwrite)
