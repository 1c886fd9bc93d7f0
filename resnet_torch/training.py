"""Gradients and optimizer steps of a PyTorch model, in canonical names and layouts.

The loss is the mean cross-entropy of the logits (the ``logits`` stage probe, so
MiniModel's optional softmax is bypassed) on integer labels. BatchNorm runs in train
mode with batch statistics; dropout is off, because the frameworks draw different
random masks.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from resnet_core import names, spec
from resnet_core.training import OPTIMIZERS, check_batch

from .weights import config_of, export_weights

DEFAULT_ADAM_EPSILON = 1e-8  # torch.optim.Adam's default, applied after the bias correction


def _dtype(model: nn.Module) -> np.dtype:
    return torch.empty(0, dtype=next(model.parameters()).dtype).numpy().dtype


def _logits_module(model: nn.Module, cfg: spec.Config) -> nn.Module:
    name = next(p.name for p in spec.probes(cfg) if p.stage == "logits")
    return dict(model.named_modules())[name]


def _trainable(model: nn.Module, cfg: spec.Config) -> dict[str, tuple[spec.ParamSpec, nn.Parameter]]:
    params = dict(model.named_parameters())
    return {
        p.name: (p, params[names.framework_name("torch", p.module, p.role)])
        for p in spec.param_specs(cfg)
        if p.trainable
    }


def _loss(model: nn.Module, cfg: spec.Config, x: np.ndarray, labels: np.ndarray) -> torch.Tensor:
    """Train-mode forward (dropout off) and mean cross-entropy of the logits."""
    y = check_batch(cfg, x, labels)
    device = next(model.parameters()).device
    captured: list[torch.Tensor] = []
    handle = _logits_module(model, cfg).register_forward_hook(lambda _m, _i, out: captured.append(out))
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    try:
        model(torch.from_numpy(np.ascontiguousarray(x, dtype=_dtype(model))).to(device))
    finally:
        handle.remove()
    return F.cross_entropy(captured[0], torch.from_numpy(y).to(device))


def gradients(model: nn.Module, x: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Gradient of the mean cross-entropy for every trainable canonical tensor (canonical layout)."""
    cfg = config_of(model)
    params = _trainable(model, cfg)
    model.zero_grad(set_to_none=True)
    _loss(model, cfg, x, labels).backward()
    out = {n: names.from_framework("torch", p.role, t.grad.detach().cpu().numpy()) for n, (p, t) in params.items()}
    model.zero_grad(set_to_none=True)
    return out


def make_optimizer(
    model: nn.Module,
    optimizer: str,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    betas: tuple[float, float],
    eps: float | None,
) -> torch.optim.Optimizer:
    """torch.optim's SGD (coupled L2 weight decay: ``g + wd * w``) or Adam (epsilon after bias correction)."""
    params = [t for _, t in _trainable(model, config_of(model)).values()]
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if optimizer == "adam":
        return torch.optim.Adam(
            params, lr=lr, betas=betas, weight_decay=weight_decay, eps=DEFAULT_ADAM_EPSILON if eps is None else eps
        )
    raise ValueError(f"unknown optimizer {optimizer!r}: expected one of {list(OPTIMIZERS)}")


def optimizer_step(
    model: nn.Module,
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
        opt.zero_grad(set_to_none=True)
        _loss(model, cfg, x, labels).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return export_weights(model)
