"""A seed recipe trained with Keras' own tools: keras.optimizers, a Keras LearningRateSchedule and a plain loop
(the backend's own gradients through :func:`resnet_keras.backends.gradient_function`, then
``optimizer.apply_gradients``; ``model.fit`` would not let the loop hand back the logits of each step nor
take the batches from outside).

How the recipe's fields map (see :mod:`resnet_core.recipes` for the conventions):

- Adam: ``keras.optimizers.Adam``, which adds epsilon to sqrt(v) before the bias correction; a recipe with
  Keras' epsilon (seed 001) passes it as is; for one with PyTorch's ("after"), ``optimizer.epsilon`` is set
  to ``eps * sqrt(1 - beta_2**t)`` before step t.
- SGD with momentum: ``keras.optimizers.SGD`` keeps ``m = mu*m - lr_t*g`` (the learning rate inside the
  buffer). For a recipe in PyTorch's convention (``b = mu*b + g``, step ``-lr_t*b``) under a changing learning
  rate, the momentum buffers are rescaled by ``lr_t / lr_{t-1}`` before step t, which gives PyTorch's update
  exactly; under a constant rate the two are the same and the factor is 1.
- weight decay: Keras' ``weight_decay`` is decoupled (AdamW-style), so the recipe's coupled L2 is added to
  the gradient (``g + wd*w``) here.
- cosine: ``keras.optimizers.schedules.CosineDecay(decay_steps=total_steps)``, evaluated by the optimizer at
  its own iteration count. Keras keeps the learning rate in float32 even for float64 weights: 0.1 becomes
  0.10000000149 (a relative 1.5e-8), which float64 runs see as a tiny real difference.
- loss: ``sparse_categorical_crossentropy(from_logits=True)`` of the logits (train mode; dropout off).
"""

from __future__ import annotations

import keras
import numpy as np

from resnet_core import names
from resnet_core.recipes import Recipe

from .backends import gradient_function, optimizer_function
from .probes import dropout_off
from .training import _trainable, cross_entropy, logits_model
from .weights import config_of


class Trainer:
    """One model, its optimizer and schedule; ``step`` trains on one batch, ``predict`` evaluates."""

    def __init__(self, model: keras.Model, recipe: Recipe, total_steps: int) -> None:
        self.model, self.recipe, self.t = model, recipe, 0
        cfg = config_of(model)
        self.variables = [v for _, v in _trainable(model, cfg).values()]
        self.schedule = (
            keras.optimizers.schedules.CosineDecay(recipe.lr, decay_steps=total_steps)
            if recipe.schedule == "cosine"
            else None
        )
        lr = self.schedule if self.schedule is not None else recipe.lr
        if recipe.optimizer == "sgd":
            self.opt: keras.optimizers.Optimizer = keras.optimizers.SGD(learning_rate=lr, momentum=recipe.momentum)
        elif recipe.optimizer == "adam":
            self.opt = keras.optimizers.Adam(
                learning_rate=lr, beta_1=recipe.betas[0], beta_2=recipe.betas[1], epsilon=recipe.adam_epsilon
            )
        else:
            raise ValueError(f"unknown optimizer {recipe.optimizer!r}: expected 'sgd' or 'adam'")
        self.opt.build(self.variables)
        self.logits_model = logits_model(model, cfg)
        self.gradients = gradient_function(self.logits_model, cross_entropy, self.variables)
        # eager: step() sets Adam's epsilon and rescales the momentum between steps
        self.apply = optimizer_function(self.opt, self.variables, recipe.weight_decay, traced=False)
        self.dtype = model.weights[0].dtype

    def _lr(self, step: int) -> float:
        return float(self.schedule(step)) if self.schedule is not None else self.recipe.lr

    def step(self, x: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        """One optimizer step; returns the loss and the (train-mode) logits of this batch before the update."""
        self.t += 1
        r = self.recipe
        if r.optimizer == "adam":
            self.opt.epsilon = r.adam_eps_at(self.t, "before")
        if r.optimizer == "sgd" and r.momentum and r.momentum_convention == "torch" and self.t > 1:
            ratio = self._lr(self.t - 1) / self._lr(self.t - 2)
            if ratio != 1.0:
                for m in self.opt.momentums:
                    m.assign(m * ratio)
        xt = names.nchw_to_nhwc(np.asarray(x, dtype=self.dtype))
        y = np.asarray(labels, dtype=np.int64)
        with dropout_off(self.model):
            loss, logits, grads = self.gradients(xt, y)
        self.apply(grads)
        return float(loss), keras.ops.convert_to_numpy(logits)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Eval-mode logits (BN moving statistics)."""
        xt = names.nchw_to_nhwc(np.asarray(x, dtype=self.dtype))
        return keras.ops.convert_to_numpy(self.logits_model(xt, training=False))


def make_trainer(model: keras.Model, recipe: Recipe, total_steps: int) -> Trainer:
    """A :class:`Trainer` for ``model`` under ``recipe``, for a run of ``total_steps`` (the cosine period)."""
    return Trainer(model, recipe, total_steps)
