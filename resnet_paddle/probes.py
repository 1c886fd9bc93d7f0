"""Intermediate outputs of a Paddle model at the canonical probe points."""

from __future__ import annotations

import numpy as np
import paddle
from paddle import nn

from resnet_core import spec

from .weights import config_of


def probe_outputs(model: nn.Layer, x: np.ndarray, *, training: bool = False) -> dict[str, np.ndarray]:
    """Run ``model`` on NCHW ``x`` and return every probe's output (NCHW), plus ``"output"``.

    With ``training=True`` BatchNorm uses batch statistics (and updates its
    running statistics); dropout stays off so the frameworks can be compared.
    """
    cfg = config_of(model)
    layers = dict(model.named_sublayers())
    captured: dict[str, np.ndarray] = {}
    handles = []
    for p in spec.probes(cfg):
        hook = lambda _l, _i, out, name=p.name: captured.__setitem__(name, out.numpy().copy())
        handles.append(layers[p.name].register_forward_post_hook(hook))
    was_training = model.training
    model.train() if training else model.eval()
    for layer in model.sublayers():
        if isinstance(layer, nn.Dropout):
            layer.eval()
    try:
        with paddle.no_grad():
            out = model(paddle.to_tensor(np.ascontiguousarray(x, dtype=np.float32)))
    finally:
        for h in handles:
            h.remove()
        model.train() if was_training else model.eval()
    captured["output"] = out.numpy()
    return captured
