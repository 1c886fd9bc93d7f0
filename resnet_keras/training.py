"""Gradients and optimizer steps of a Keras model, in canonical names and layouts.

The loss is the mean cross-entropy of the logits (the ``logits`` stage layer, so
MiniModel's optional softmax is bypassed) on integer labels. BatchNorm runs with
``training=True`` (batch statistics); dropout is off, because the frameworks draw
different random masks. Inputs are NCHW, as everywhere in the parity suite, and
transposed to NHWC here. TensorFlow's GradientTape is used for the gradients: the
"keras.layers/keras.ops only" rule is for ``models.py``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import keras
import numpy as np
import tensorflow as tf

from resnet_core import names, spec
from resnet_core.training import OPTIMIZERS, check_batch, check_dtype

from .weights import _variable, config_of, export_weights

DEFAULT_ADAM_EPSILON = 1e-7  # keras.optimizers.Adam's default, applied before the bias correction


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




def _trainable(model: keras.Model, cfg: spec.Config) -> dict[str, tuple[spec.ParamSpec, keras.Variable]]:
    return {p.name: (p, _variable(model, p)) for p in spec.param_specs(cfg) if p.trainable}


@contextmanager
def _dropout_off(model: keras.Model) -> Iterator[None]:
    dropouts = [l for l in model.layers if isinstance(l, keras.layers.Dropout)]
    rates = [l.rate for l in dropouts]
    for l in dropouts:
        l.rate = 0.0
    try:
        yield
    finally:
        for l, r in zip(dropouts, rates):
            l.rate = r


def _loss_and_grads(model: keras.Model, cfg: spec.Config, x: np.ndarray, labels: np.ndarray, variables: list):
    """Train-mode forward (dropout off), mean cross-entropy of the logits, and its gradients."""
    y = check_batch(cfg, x, labels)
    logits_name = next(p.name for p in spec.probes(cfg) if p.stage == "logits")
    logits_model = keras.Model(model.inputs[0], model.get_layer(logits_name).output)
    xt = names.nchw_to_nhwc(np.asarray(x, dtype=model.weights[0].dtype))
    with _dropout_off(model), tf.GradientTape() as tape:
        logits = logits_model(xt, training=True)
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
    return loss, tape.gradient(loss, variables)


def gradients(model: keras.Model, x: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Gradient of the mean cross-entropy for every trainable canonical tensor (canonical layout)."""
    cfg = config_of(model)
    params = _trainable(model, cfg)
    _, grads = _loss_and_grads(model, cfg, x, labels, [v for _, v in params.values()])
    return {n: names.from_framework("keras", p.role, keras.ops.convert_to_numpy(g))
            for (n, (p, _)), g in zip(params.items(), grads)}


def make_optimizer(optimizer: str, *, lr: float, momentum: float, betas: tuple[float, float], eps: float | None,
                   decoupled_weight_decay: float | None = None) -> keras.optimizers.Optimizer:
    """keras.optimizers' SGD or Adam; ``decoupled_weight_decay`` is Keras' own ``weight_decay`` argument."""
    if optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=momentum, weight_decay=decoupled_weight_decay)
    if optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr, beta_1=betas[0], beta_2=betas[1], weight_decay=decoupled_weight_decay,
                                     epsilon=DEFAULT_ADAM_EPSILON if eps is None else eps)
    raise ValueError(f"unknown optimizer {optimizer!r}: expected one of {list(OPTIMIZERS)}")


def optimizer_step(model: keras.Model, x: np.ndarray, labels: np.ndarray, optimizer: str = "sgd", *, steps: int = 1,
                   lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0,
                   betas: tuple[float, float] = (0.9, 0.999), eps: float | None = None,
                   decoupled_weight_decay: bool = False) -> dict[str, np.ndarray]:
    """Run ``steps`` optimizer steps on one batch; return every canonical tensor afterwards.

    ``weight_decay`` is L2 decay as PyTorch and Paddle apply it, ``g + wd * w`` added to
    the gradient (Keras' optimizers have no such option, so it is added here). With
    ``decoupled_weight_decay=True`` it is passed to the Keras optimizer instead, which
    shrinks the weights by ``lr * wd * w`` outside the momentum/Adam update.
    BatchNorm's moving statistics are updated by each step's forward pass.
    """
    cfg = config_of(model)
    check_batch(cfg, x, labels, steps)
    params = _trainable(model, cfg)
    variables = [v for _, v in params.values()]
    opt = make_optimizer(optimizer, lr=lr, momentum=momentum, betas=betas, eps=eps,
                         decoupled_weight_decay=weight_decay if decoupled_weight_decay and weight_decay else None)
    for _ in range(steps):
        _, grads = _loss_and_grads(model, cfg, x, labels, variables)
        if weight_decay and not decoupled_weight_decay:
            grads = [g + weight_decay * v.value for g, v in zip(grads, variables)]
        opt.apply_gradients(zip(grads, variables))
    return export_weights(model)


# --------------------------------------------------------------------------- devices
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
