"""Where and in which dtype a PyTorch model runs: dtype copies, CPU/GPU placement, TF32."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from resnet_core.training import check_dtype

from .weights import config_of


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


def gpu_unavailable_reason() -> str | None:
    """Why PyTorch cannot run on a GPU here, or ``None`` when it can."""
    if not torch.cuda.is_available():
        build = (
            "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda} build, no device visible"
        )
        return f"PyTorch sees no CUDA GPU ({build})"
    return None


def _tf32_switches() -> list[tuple[object, str, object, object]]:
    """(object, attribute, value for TF32 on, value for off): torch's new API where it exists, else the legacy one."""
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        return [
            (torch.backends.cuda.matmul, "fp32_precision", "tf32", "ieee"),
            (torch.backends.cudnn.conv, "fp32_precision", "tf32", "ieee"),
        ]
    return [(torch.backends.cuda.matmul, "allow_tf32", True, False), (torch.backends.cudnn, "allow_tf32", True, False)]


def tf32_enabled() -> bool:
    """Whether float32 matmuls or convolutions may run as TF32 on a CUDA GPU (either switch on)."""
    return any(getattr(obj, attr) == on for obj, attr, on, _ in _tf32_switches())


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
