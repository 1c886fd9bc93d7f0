"""Intermediate outputs of a PyTorch model at the canonical probe points."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from resnet_core import spec

from .weights import config_of


def probe_outputs(model: nn.Module, x: np.ndarray, *, training: bool = False) -> dict[str, np.ndarray]:
    """Run ``model`` on NCHW ``x`` and return every probe's output (NCHW), plus ``"output"``.

    With ``training=True`` BatchNorm uses batch statistics (and updates its
    running statistics); dropout stays off so the frameworks can be compared.
    """
    cfg = config_of(model)
    modules = dict(model.named_modules())
    captured: dict[str, np.ndarray] = {}
    handles = []
    for p in spec.probes(cfg):
        # clone: the stem ReLU runs in place on the BN output
        hook = lambda _m, _i, out, name=p.name: captured.__setitem__(name, out.detach().cpu().clone().numpy())
        handles.append(modules[p.name].register_forward_hook(hook))
    was_training = model.training
    model.train(training)
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            out = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    captured["output"] = out.cpu().numpy()
    return captured
