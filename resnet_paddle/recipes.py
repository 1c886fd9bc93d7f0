"""A seed recipe trained with Paddle's own tools: paddle.optimizer, a paddle.optimizer.lr schedule and a plain loop.

How the recipe's fields map (see :mod:`resnet_core.recipes` for the conventions):

- SGD: ``paddle.optimizer.Momentum`` (``SGD`` without momentum) with ``weight_decay=wd`` (a float is
  ``L2Decay``, coupled: ``g + wd*w``); Momentum keeps ``v = mu*v + g`` and steps ``-lr*v``, PyTorch's
  convention, so nothing is adapted.
- Adam: ``paddle.optimizer.Adam``, which adds epsilon after the bias correction (as PyTorch); for a recipe
  whose epsilon is Keras' (applied before), the optimizer's epsilon is set to ``eps / sqrt(1 - beta_2**t)``
  before step t.
- cosine: ``paddle.optimizer.lr.CosineAnnealingDecay(T_max=total_steps)``, stepped after every step.
- loss: ``F.cross_entropy`` of the logits (train mode; dropout off).
"""

from __future__ import annotations

import numpy as np
import paddle
from paddle import nn
from paddle.nn import functional as F

from resnet_core import spec
from resnet_core.recipes import Recipe

from .training import _dtype, _trainable
from .weights import config_of


class Trainer:
    """One model, its optimizer and schedule; ``step`` trains on one batch, ``predict`` evaluates."""

    def __init__(self, model: nn.Layer, recipe: Recipe, total_steps: int) -> None:
        self.model, self.recipe, self.t = model, recipe, 0
        cfg = config_of(model)
        params = [p for _, p in _trainable(model, cfg).values()]
        self.sched = (
            paddle.optimizer.lr.CosineAnnealingDecay(learning_rate=recipe.lr, T_max=total_steps)
            if recipe.schedule == "cosine"
            else None
        )
        lr = self.sched if self.sched is not None else recipe.lr
        wd = recipe.weight_decay or None
        if recipe.optimizer == "sgd" and recipe.momentum:
            self.opt = paddle.optimizer.Momentum(
                learning_rate=lr, momentum=recipe.momentum, parameters=params, weight_decay=wd
            )
        elif recipe.optimizer == "sgd":
            self.opt = paddle.optimizer.SGD(learning_rate=lr, parameters=params, weight_decay=wd)
        elif recipe.optimizer == "adam":
            self.opt = paddle.optimizer.Adam(
                learning_rate=lr,
                beta1=recipe.betas[0],
                beta2=recipe.betas[1],
                epsilon=recipe.adam_epsilon,
                parameters=params,
                weight_decay=wd,
            )
        else:
            raise ValueError(f"unknown optimizer {recipe.optimizer!r}: expected 'sgd' or 'adam'")
        self._logits = dict(model.named_sublayers())[next(p.name for p in spec.probes(cfg) if p.stage == "logits")]

    def step(self, x: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        """One optimizer step; returns the loss and the (train-mode) logits of this batch before the update."""
        self.t += 1
        if self.recipe.optimizer == "adam":
            self.opt._epsilon = self.recipe.adam_eps_at(self.t, "after")
        captured: list[paddle.Tensor] = []
        handle = self._logits.register_forward_post_hook(lambda _l, _i, out: captured.append(out))
        self.model.train()
        for layer in self.model.sublayers():
            if isinstance(layer, nn.Dropout):
                layer.eval()
        try:
            self.opt.clear_grad()
            self.model(paddle.to_tensor(np.ascontiguousarray(x, dtype=_dtype(self.model))))
        finally:
            handle.remove()
        loss = F.cross_entropy(captured[0], paddle.to_tensor(np.asarray(labels, dtype=np.int64)))
        loss.backward()
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        return float(loss.numpy()), captured[0].numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Eval-mode logits (BN running statistics)."""
        self.model.eval()
        with paddle.no_grad():
            return self.model(paddle.to_tensor(np.ascontiguousarray(x, dtype=_dtype(self.model)))).numpy()


def make_trainer(model: nn.Layer, recipe: Recipe, total_steps: int) -> Trainer:
    """A :class:`Trainer` for ``model`` under ``recipe``, for a run of ``total_steps`` (the cosine period)."""
    return Trainer(model, recipe, total_steps)
