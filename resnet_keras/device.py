"""Where and in which dtype a Keras model runs: dtype copies, CPU/GPU placement, TF32."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras
import tensorflow as tf

from resnet_core.training import check_dtype

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
    if into is None:
        saved = keras.config.dtype_policy()
        keras.config.set_dtype_policy(dtype)
        try:
            into = type(model).from_config(model.get_config())
        finally:
            keras.config.set_dtype_policy(saved)
    source = {v.path: v for v in model.weights}
    for v in into.weights:
        v.assign(keras.ops.convert_to_numpy(source[v.path]).astype(dtype))
    return into


def gpu_unavailable_reason() -> str | None:
    """Why TensorFlow cannot run on a GPU here, or ``None`` when it can."""
    if not tf.config.list_physical_devices("GPU"):
        built = "built with CUDA" if tf.test.is_built_with_cuda() else "a CPU-only build"
        return f"TensorFlow sees no GPU ({built})"
    return None


@contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """Switch TensorFloat-32 execution on or off inside the block (restored afterwards)."""
    saved = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(enabled)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(saved)


@contextmanager
def on_device(model: keras.Model, device: str) -> Iterator[keras.Model]:
    """Run ``model`` on ``"cpu"`` or ``"gpu"``; on the GPU with TF32 off (restored afterwards).

    Raises ``RuntimeError`` with the reason when no GPU is usable.
    """
    if device == "cpu":
        with tf.device("/CPU:0"):  # TF would pick a visible GPU by itself
            yield model
        return
    if device != "gpu":
        raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'gpu'")
    reason = gpu_unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    with tf32(False), tf.device("/GPU:0"):
        yield model
