"""Where and in which dtype a Paddle model runs: dtype copies, CPU/GPU placement, TF32."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import paddle
from paddle import nn

from resnet_core.training import check_dtype

from .weights import config_of


def cast_model(model: nn.Layer, dtype: str, *, into: nn.Layer | None = None) -> nn.Layer:
    """A copy of ``model`` whose parameters and BN statistics are ``dtype`` (``float32`` or ``float64``).

    With ``into`` (an earlier copy of a model of the same config), its values are
    overwritten instead, which saves building a new copy.
    """
    check_dtype(dtype)
    config_of(model)
    if into is None:
        into = copy.deepcopy(model)
        into.to(dtype=dtype)
        return into
    source = model.state_dict()
    for name, t in into.state_dict().items():
        t.set_value(source[name].numpy().astype(dtype))  # set_value refuses another dtype
    return into


def gpu_unavailable_reason() -> str | None:
    """Why Paddle cannot run on a GPU here, or ``None`` when it can."""
    if not paddle.device.is_compiled_with_cuda():
        return "Paddle is a CPU-only build (paddlepaddle, not paddlepaddle-gpu)"
    if paddle.device.cuda.device_count() == 0:
        return "Paddle is built with CUDA but sees no GPU"
    return None


@contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """Switch TF32 in cuBLAS and cuDNN on or off inside the block (restored afterwards).

    These are Paddle's runtime switches (``core.set_cublas_switch``/``set_cudnn_switch``);
    the process-wide alternative is ``NVIDIA_TF32_OVERRIDE=0`` before CUDA starts.
    """
    core = paddle.base.core
    saved = core.get_cublas_switch(), core.get_cudnn_switch()
    core.set_cublas_switch(enabled)
    core.set_cudnn_switch(enabled)
    try:
        yield
    finally:
        core.set_cublas_switch(saved[0])
        core.set_cudnn_switch(saved[1])


@contextmanager
def on_device(model: nn.Layer, device: str) -> Iterator[nn.Layer]:
    """Run ``model`` on ``"cpu"`` or ``"gpu"``; on the GPU with TF32 off (restored afterwards).

    Raises ``RuntimeError`` with the reason when no GPU is usable.
    """
    if device not in ("cpu", "gpu"):
        raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'gpu'")
    if device == "gpu" and (reason := gpu_unavailable_reason()):
        raise RuntimeError(reason)
    saved = paddle.get_device()
    if device == "cpu" and saved == "cpu":
        yield model
        return
    paddle.set_device(device)  # paddle.to_tensor places new tensors on the current device
    model.to(device=device)
    try:
        with tf32(False) if device == "gpu" else nullcontext():
            yield model
    finally:
        paddle.set_device(saved)
        model.to(device=saved)
