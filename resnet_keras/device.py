"""Where and in which dtype a Keras model runs: dtype copies, CPU/GPU placement, TF32 (on every Keras backend)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import keras

from resnet_core.training import check_dtype

from . import backends
from .models import dtype_policy, zero_variables
from .weights import config_of


def cast_model(model: keras.Model, dtype: str, *, into: keras.Model | None = None) -> keras.Model:
    """A copy of ``model`` whose variables and computations are ``dtype`` (``float32`` or ``float64``).

    Keras fixes a layer's dtype when it is built, so the copy is rebuilt from the
    model's config under a ``dtype`` policy and given the original's values. With
    ``into`` (an earlier copy of a model of the same config), its values are
    overwritten instead, which saves the rebuild.
    """
    check_dtype(dtype)
    config_of(model)
    if dtype == "float64" and (reason := backends.x64_unavailable_reason()):
        raise RuntimeError(reason)
    if into is None:
        with dtype_policy(dtype), zero_variables():  # every value is assigned below
            into = type(model).from_config(model.get_config())
    source = {v.path: v for v in model.weights}
    for v in into.weights:
        v.assign(keras.ops.convert_to_numpy(source[v.path]).astype(dtype))
    return into


def gpu_unavailable_reason() -> str | None:
    """Why Keras' backend cannot run on a GPU here, or ``None`` when it can."""
    return backends.current().gpu_unavailable_reason()


def tf32_enabled() -> bool:
    """Whether float32 matmuls and convolutions may run as TensorFloat-32 on a GPU (this backend's switch)."""
    return backends.current().tf32_enabled()


def tf32(enabled: bool) -> AbstractContextManager[None]:
    """Switch TensorFloat-32 execution on or off inside the block (restored afterwards)."""
    return backends.current().tf32(enabled)


@contextmanager
def on_device(model: keras.Model, device: str) -> Iterator[keras.Model]:
    """Run ``model`` on ``"cpu"`` or ``"gpu"``; on the GPU with TF32 off (restored afterwards).

    Raises ``RuntimeError`` with the reason when no GPU is usable.
    """
    if device not in ("cpu", "gpu"):
        raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'gpu'")
    backend = backends.current()
    if device == "cpu":
        with backend.placed(model, "cpu") as placed:
            yield placed
        return
    reason = backend.gpu_unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    with backend.tf32(False), backend.placed(model, "gpu") as placed:
        yield placed
