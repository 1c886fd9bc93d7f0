"""Gradients and optimizer steps of a Keras model, in canonical names and layouts.

The loss is the mean cross-entropy of the logits (the ``logits`` stage layer, so
MiniModel's optional softmax is bypassed) on integer labels. BatchNorm runs with
``training=True`` (batch statistics); dropout is off, because the frameworks draw
different random masks. Inputs are NCHW, as everywhere in the parity suite, and
transposed to NHWC here. The gradients come from the backend's own automatic
differentiation (:func:`resnet_keras.backends.gradient_function`), so this runs on every
Keras backend.
"""

from __future__ import annotations

import keras
import numpy as np

from resnet_core import names, spec
from resnet_core.training import OPTIMIZERS, check_batch

from .backends import GradientFunction, gradient_function, optimizer_function
from .probes import dropout_off
from .weights import config_of, export_weights, variable

DEFAULT_ADAM_EPSILON = 1e-7  # keras.optimizers.Adam's default, applied before the bias correction


def _trainable(model: keras.Model, cfg: spec.Config) -> dict[str, tuple[spec.ParamSpec, keras.Variable]]:
    return {p.name: (p, variable(model, p)) for p in spec.param_specs(cfg) if p.trainable}


def cross_entropy(logits, labels):
    """The mean cross-entropy of ``logits`` on integer ``labels``."""
    return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))


def logits_model(model: keras.Model, cfg: spec.Config) -> keras.Model:
    """``model`` up to its ``logits`` stage layer (MiniModel's optional softmax bypassed)."""
    logits_name = names.keras_layer(next(p.name for p in spec.probes(cfg) if p.stage == "logits"))
    return keras.Model(model.inputs[0], model.get_layer(logits_name).output)


def _cross_entropy_gradients(model: keras.Model, cfg: spec.Config, variables: list) -> GradientFunction:
    """Train-mode forward, mean cross-entropy of the logits and its gradients: call it under ``dropout_off``."""
    return gradient_function(logits_model(model, cfg), cross_entropy, variables)


def _batch(model: keras.Model, cfg: spec.Config, x: np.ndarray, labels: np.ndarray, steps: int = 1) -> tuple:
    """The batch checked and as the model takes it: NHWC in the model's dtype, and the labels as int64."""
    y = check_batch(cfg, x, labels, steps)
    return names.nchw_to_nhwc(np.asarray(x, dtype=model.weights[0].dtype)), y


def gradients(model: keras.Model, x: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Gradient of the mean cross-entropy for every trainable canonical tensor (canonical layout)."""
    cfg = config_of(model)
    xt, y = _batch(model, cfg, x, labels)
    params = _trainable(model, cfg)
    with dropout_off(model):
        _, _, grads = _cross_entropy_gradients(model, cfg, [v for _, v in params.values()])(xt, y)
    return {
        n: names.from_framework("keras", p.role, keras.ops.convert_to_numpy(g))
        for (n, (p, _)), g in zip(params.items(), grads)
    }


def make_optimizer(
    optimizer: str,
    *,
    lr: float,
    momentum: float,
    betas: tuple[float, float],
    eps: float | None,
    decoupled_weight_decay: float | None = None,
) -> keras.optimizers.Optimizer:
    """keras.optimizers' SGD or Adam; ``decoupled_weight_decay`` is Keras' own ``weight_decay`` argument."""
    if optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=momentum, weight_decay=decoupled_weight_decay)
    if optimizer == "adam":
        return keras.optimizers.Adam(
            learning_rate=lr,
            beta_1=betas[0],
            beta_2=betas[1],
            weight_decay=decoupled_weight_decay,
            epsilon=DEFAULT_ADAM_EPSILON if eps is None else eps,
        )
    raise ValueError(f"unknown optimizer {optimizer!r}: expected one of {list(OPTIMIZERS)}")


def optimizer_step(
    model: keras.Model,
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
    decoupled_weight_decay: bool = False,
) -> dict[str, np.ndarray]:
    """Run ``steps`` optimizer steps on one batch; return every canonical tensor afterwards.

    ``weight_decay`` is L2 decay as PyTorch and Paddle apply it, ``g + wd * w`` added to
    the gradient (Keras' optimizers have no such option, so it is added here). With
    ``decoupled_weight_decay=True`` it is passed to the Keras optimizer instead, which
    shrinks the weights by ``lr * wd * w`` outside the momentum/Adam update.
    BatchNorm's moving statistics are updated by each step's forward pass.
    """
    cfg = config_of(model)
    xt, y = _batch(model, cfg, x, labels, steps)
    params = _trainable(model, cfg)
    variables = [v for _, v in params.values()]
    opt = make_optimizer(
        optimizer,
        lr=lr,
        momentum=momentum,
        betas=betas,
        eps=eps,
        decoupled_weight_decay=weight_decay if decoupled_weight_decay and weight_decay else None,
    )
    apply = optimizer_function(opt, variables, l2=0.0 if decoupled_weight_decay else weight_decay)
    with dropout_off(model):
        run = _cross_entropy_gradients(model, cfg, variables)
        for _ in range(steps):
            _, _, grads = run(xt, y)
            apply(grads)
    return export_weights(model)
