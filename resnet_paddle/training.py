"""Gradients and optimizer steps of a Paddle model, in canonical names and layouts.

The loss is the mean cross-entropy of the logits (the ``logits`` stage probe, so
MiniModel's optional softmax is bypassed) on integer labels. BatchNorm runs in train
mode with batch statistics; dropout is off, because the frameworks draw different
random masks.
"""

from __future__ import annotations

import numpy as np
import paddle
from paddle import nn
from paddle.nn import functional as F

from resnet_core import names, spec
from resnet_core.training import OPTIMIZERS, check_batch

from .weights import config_of, export_weights

DEFAULT_ADAM_EPSILON = 1e-8  # paddle.optimizer.Adam's default, applied after the bias correction


def _dtype(model: nn.Layer) -> str:
    return "float64" if model.parameters()[0].dtype == paddle.float64 else "float32"


def _trainable(model: nn.Layer, cfg: spec.Config) -> dict[str, tuple[spec.ParamSpec, paddle.Tensor]]:
    params = dict(model.named_parameters())
    return {
        p.name: (p, params[names.framework_name("paddle", p.module, p.role)])
        for p in spec.param_specs(cfg)
        if p.trainable
    }


def _loss(model: nn.Layer, cfg: spec.Config, x: np.ndarray, labels: np.ndarray) -> paddle.Tensor:
    """Train-mode forward (dropout off) and mean cross-entropy of the logits."""
    y = check_batch(cfg, x, labels)
    name = next(p.name for p in spec.probes(cfg) if p.stage == "logits")
    captured: list[paddle.Tensor] = []
    handle = dict(model.named_sublayers())[name].register_forward_post_hook(lambda _l, _i, out: captured.append(out))
    model.train()
    for layer in model.sublayers():
        if isinstance(layer, nn.Dropout):
            layer.eval()
    try:
        model(paddle.to_tensor(np.ascontiguousarray(x, dtype=_dtype(model))))
    finally:
        handle.remove()
    return F.cross_entropy(captured[0], paddle.to_tensor(y))


def gradients(model: nn.Layer, x: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Gradient of the mean cross-entropy for every trainable canonical tensor (canonical layout)."""
    cfg = config_of(model)
    params = _trainable(model, cfg)
    model.clear_gradients()
    _loss(model, cfg, x, labels).backward()
    out = {n: names.from_framework("paddle", p.role, t.grad.numpy()) for n, (p, t) in params.items()}
    model.clear_gradients()
    return out


def make_optimizer(
    model: nn.Layer,
    optimizer: str,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    betas: tuple[float, float],
    eps: float | None,
) -> paddle.optimizer.Optimizer:
    """paddle.optimizer's Momentum or Adam; a float ``weight_decay`` is L2Decay, coupled: ``g + wd * w``."""
    params = [t for _, t in _trainable(model, config_of(model)).values()]
    wd = weight_decay or None
    if optimizer == "sgd":
        if momentum:
            return paddle.optimizer.Momentum(learning_rate=lr, momentum=momentum, parameters=params, weight_decay=wd)
        return paddle.optimizer.SGD(learning_rate=lr, parameters=params, weight_decay=wd)
    if optimizer == "adam":
        return paddle.optimizer.Adam(
            learning_rate=lr,
            beta1=betas[0],
            beta2=betas[1],
            parameters=params,
            weight_decay=wd,
            epsilon=DEFAULT_ADAM_EPSILON if eps is None else eps,
        )
    raise ValueError(f"unknown optimizer {optimizer!r}: expected one of {list(OPTIMIZERS)}")


def optimizer_step(
    model: nn.Layer,
    x: np.ndarray,
    labels: np.ndarray,
    optimizer: str = "sgd",
    *,
    steps: int = 1,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float | None = None,
) -> dict[str, np.ndarray]:
    """Run ``steps`` optimizer steps on one batch; return every canonical tensor afterwards.

    BatchNorm is in train mode, so its running statistics are updated by each step's
    forward pass. ``eps=None`` is the framework's own Adam default.
    """
    cfg = config_of(model)
    check_batch(cfg, x, labels, steps)
    opt = make_optimizer(model, optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay, betas=betas, eps=eps)
    for _ in range(steps):
        opt.clear_grad()
        _loss(model, cfg, x, labels).backward()
        opt.step()
    opt.clear_grad()
    return export_weights(model)
