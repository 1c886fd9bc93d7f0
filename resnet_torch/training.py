"""Gradients and optimizer steps of a PyTorch model, in canonical names and layouts.

The loss is the mean cross-entropy of the logits (the ``logits`` stage probe, so
MiniModel's optional softmax is bypassed) on integer labels. BatchNorm runs in train
mode with batch statistics; dropout is off, because the frameworks draw different
random masks.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from resnet_core import names, spec
from resnet_core.training import OPTIMIZERS, check_batch, check_dtype

from .weights import config_of, export_weights

DEFAULT_ADAM_EPSILON = 1e-8  # torch.optim.Adam's default, applied after the bias correction


def cast_model(model: nn.Module, dtype: str, *, into: nn.Module | None = None) -> nn.Module:
    """A copy of ``model`` whose parameters and BN statistics are ``dtype`` (``float32`` or ``float64``).

    With ``into`` (an earlier copy of a model of the same config), its values are
    overwritten instead, which saves building a new copy.
    """
    check_dtype(dtype)
    config_of(model)
    if into is None:
        return copy.deepcopy(model).to(getattr(torch, dtype))
    into.load_state_dict(model.state_dict())  # copy_ casts to into's dtype
    return into


def _dtype(model: nn.Module) -> np.dtype:
    return torch.empty(0, dtype=next(model.parameters()).dtype).numpy().dtype


def _logits_module(model: nn.Module, cfg: spec.Config) -> nn.Module:
    name = next(p.name for p in spec.probes(cfg) if p.stage == "logits")
    return dict(model.named_modules())[name]




def _trainable(model: nn.Module, cfg: spec.Config) -> dict[str, tuple[spec.ParamSpec, nn.Parameter]]:
    params = dict(model.named_parameters())
    return {p.name: (p, params[names.framework_name("torch", p.module, p.role)]) for p in spec.param_specs(cfg) if p.trainable}


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


def make_optimizer(model: nn.Module, optimizer: str, *, lr: float, momentum: float, weight_decay: float,
                   betas: tuple[float, float], eps: float | None) -> torch.optim.Optimizer:
    """torch.optim's SGD (coupled L2 weight decay: ``g + wd * w``) or Adam (epsilon after bias correction)."""
    params = [t for _, t in _trainable(model, config_of(model)).values()]
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay,
                                eps=DEFAULT_ADAM_EPSILON if eps is None else eps)
    raise ValueError(f"unknown optimizer {optimizer!r}: expected one of {list(OPTIMIZERS)}")


def optimizer_step(model: nn.Module, x: np.ndarray, labels: np.ndarray, optimizer: str = "sgd", *, steps: int = 1,
                   lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0,
                   betas: tuple[float, float] = (0.9, 0.999), eps: float | None = None) -> dict[str, np.ndarray]:
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


# --------------------------------------------------------------------------- devices
def gpu_unavailable_reason() -> str | None:
    """Why PyTorch cannot run on a GPU here, or ``None`` when it can."""
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda} build, no device visible"
        return f"PyTorch sees no CUDA GPU ({build})"
    return None


def _tf32_switches() -> list[tuple[object, str, object, object]]:
    """(object, attribute, value for TF32 on, value for off): torch's new API where it exists, else the legacy one."""
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        return [(torch.backends.cuda.matmul, "fp32_precision", "tf32", "ieee"),
                (torch.backends.cudnn.conv, "fp32_precision", "tf32", "ieee")]
    return [(torch.backends.cuda.matmul, "allow_tf32", True, False), (torch.backends.cudnn, "allow_tf32", True, False)]


@contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """Switch TF32 for matmuls and convolutions on or off inside the block (restored afterwards)."""
    switches = _tf32_switches()
    saved = [getattr(obj, attr) for obj, attr, _, _ in switches]
    for obj, attr, on, off in switches:
        setattr(obj, attr, on if enabled else off)
    try:
        yield
    finally:
        for (obj, attr, _, _), value in zip(switches, saved):
            setattr(obj, attr, value)


@contextmanager
def on_device(model: nn.Module, device: str) -> Iterator[nn.Module]:
    """Run ``model`` on ``"cpu"`` or ``"gpu"``; on the GPU with TF32 off (restored afterwards).

    Raises ``RuntimeError`` with the reason when no GPU is usable.
    """
    if device == "cpu":
        yield model
        return
    if device != "gpu":
        raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'gpu'")
    reason = gpu_unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    with tf32(False):
        model.to("cuda")
        try:
            yield model
        finally:
            model.to("cpu")
