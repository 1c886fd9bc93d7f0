"""A seed recipe trained with PyTorch's own tools: torch.optim, a torch.optim.lr_scheduler and a plain loop.

How the recipe's fields map (see :mod:`resnet_core.recipes` for the conventions):

- SGD: ``torch.optim.SGD(lr, momentum, weight_decay)``; its momentum (``b = mu*b + g``, step ``-lr*b``) and
  coupled weight decay are the recipes' reference conventions, so nothing is adapted.
- Adam: ``torch.optim.Adam``, which adds epsilon after the bias correction; for a recipe whose epsilon is
  Keras' (applied before), the param group's ``eps`` is set to ``eps / sqrt(1 - beta_2**t)`` before step t.
- cosine: ``CosineAnnealingLR(T_max=total_steps)``, stepped after every optimizer step.
- loss: ``F.cross_entropy`` of the logits (train mode, batch statistics; dropout off: the frameworks draw
  different masks).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from resnet_core.recipes import Recipe

from .training import _dtype, _logits_module, _trainable
from .weights import config_of


class Trainer:
    """One model, its optimizer and schedule; ``step`` trains on one batch, ``predict`` evaluates."""

    def __init__(self, model: nn.Module, recipe: Recipe, total_steps: int) -> None:
        self.model, self.recipe, self.t = model, recipe, 0
        cfg = config_of(model)
        params = [p for _, p in _trainable(model, cfg).values()]
        if recipe.optimizer == "sgd":
            self.opt: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
            )
        elif recipe.optimizer == "adam":
            self.opt = torch.optim.Adam(
                params, lr=recipe.lr, betas=recipe.betas, weight_decay=recipe.weight_decay, eps=recipe.adam_epsilon
            )
        else:
            raise ValueError(f"unknown optimizer {recipe.optimizer!r}: expected 'sgd' or 'adam'")
        self.sched = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=total_steps)
            if recipe.schedule == "cosine"
            else None
        )
        self._logits = _logits_module(model, cfg)

    def step(self, x: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        """One optimizer step; returns the loss and the (train-mode) logits of this batch before the update."""
        self.t += 1
        if self.recipe.optimizer == "adam":
            for group in self.opt.param_groups:
                group["eps"] = self.recipe.adam_eps_at(self.t, "after")
        captured: list[torch.Tensor] = []
        handle = self._logits.register_forward_hook(lambda _m, _i, out: captured.append(out))
        self.model.train()
        for m in self.model.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        try:
            self.opt.zero_grad(set_to_none=True)
            self.model(torch.from_numpy(np.ascontiguousarray(x, dtype=_dtype(self.model))))
        finally:
            handle.remove()
        loss = F.cross_entropy(captured[0], torch.from_numpy(np.asarray(labels, dtype=np.int64)))
        loss.backward()
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        return float(loss.detach()), captured[0].detach().numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Eval-mode logits (BN running statistics)."""
        self.model.eval()
        with torch.no_grad():
            return self.model(torch.from_numpy(np.ascontiguousarray(x, dtype=_dtype(self.model)))).numpy()


def make_trainer(model: nn.Module, recipe: Recipe, total_steps: int) -> Trainer:
    """A :class:`Trainer` for ``model`` under ``recipe``, for a run of ``total_steps`` (the cosine period)."""
    return Trainer(model, recipe, total_steps)
