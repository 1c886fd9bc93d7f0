"""The seeds' training recipes, as data: one record per seed tutorial.

Each :class:`Recipe` says what its tutorial trains and how (variant, optimizer and its
hyper-parameters, learning-rate schedule, loss, batch, normalisation, augmentation, input size).
The numpy data pipeline (:mod:`.data`) draws every random decision once, so the three frameworks
see identical batches; each framework's ``recipes.py`` turns a record into its own optimizer,
schedule and loop; :mod:`.run` drives them side by side and :mod:`.render` draws the result.

Where a tutorial's framework and another framework spell the same recipe differently, the record
states the tutorial's meaning and each framework adapts (see each field's comment):

- ``adam_epsilon_applied``: Keras adds epsilon to sqrt(v) *before* the bias correction, PyTorch and
  Paddle after it. Seed 001 is a Keras tutorial, so its epsilon is Keras' 1e-7 "before"; PyTorch and
  Paddle then use ``eps / sqrt(1 - beta_2**t)`` at step t, which is the same update exactly
  (``docs/framework-differences.md``, ``resnet_core.parity.settings.optimizer_settings``).
- ``momentum_convention``: PyTorch and Paddle keep ``b = mu*b + g`` and step ``-lr_t * b``; Keras keeps
  ``m = mu*m - lr_t*g``. Under a constant learning rate these are the same; under a schedule they are
  not (Keras' buffer holds old learning rates). Seed 002 is PyTorch's, so Keras rescales its momentum
  buffer by ``lr_t / lr_{t-1}`` before each step, which makes it PyTorch's update exactly.
- ``weight_decay`` is coupled L2 (``g + wd*w``, PyTorch's and Paddle's ``weight_decay``); Keras has no
  such option, so its loop adds ``wd*w`` to the gradient.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """One seed tutorial's training recipe. ``source`` names the seed and what was read there."""

    name: str
    variant: str
    source: str
    optimizer: str  # "sgd" (with momentum when > 0) or "adam"
    lr: float
    batch: int
    input_size: tuple[int, int]
    channels: int  # channels the data pipeline delivers (the digits are replicated to 3 for CIFAR recipes)
    momentum: float = 0.0
    weight_decay: float = 0.0  # coupled L2: g + wd * w
    betas: tuple[float, float] = (0.9, 0.999)
    adam_epsilon: float = 1e-7
    adam_epsilon_applied: str = "before"  # "before" (Keras) or "after" (PyTorch, Paddle) the bias correction
    momentum_convention: str = "torch"  # "torch" (b = mu b + g; w -= lr b) or "keras" (m = mu m - lr g; w += m)
    schedule: str = "constant"  # "constant" or "cosine" (annealed to 0 over the run's steps)
    loss: str = "cross_entropy"  # mean softmax cross-entropy of the logits (Keras' categorical_crossentropy on softmax)
    normalisation: str = "none"  # "none", "per_channel" (mean/std per channel) or "featurewise" (seed 001's)
    augmentation: Mapping[str, Any] = field(default_factory=dict)
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)  # builder options beyond the variant's

    def with_(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (for short test runs and deliberately different recipes)."""
        return replace(self, **changes)

    def lr_at(self, step: int, total_steps: int) -> float:
        """The reference learning rate of (0-based) ``step`` in a run of ``total_steps``: what every framework's
        own schedule must give (PyTorch CosineAnnealingLR, Keras CosineDecay, Paddle CosineAnnealingDecay)."""
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "cosine":
            return 0.5 * self.lr * (1 + math.cos(math.pi * step / total_steps))
        raise ValueError(f"unknown schedule {self.schedule!r}: expected 'constant' or 'cosine'")

    def adam_eps_at(self, step: int, applied: str) -> float:
        """The epsilon a framework that applies it ``applied`` ("before"/"after") the bias correction must use at
        1-based ``step`` so that its update equals the recipe's."""
        if applied == self.adam_epsilon_applied:
            return self.adam_epsilon
        corr = math.sqrt(1 - self.betas[1] ** step)
        return self.adam_epsilon / corr if applied == "after" else self.adam_epsilon * corr


_TABLE = (
    # Seed 001 (Keras tutorial, MiniModel on CIFAR-10): Adam(0.001) with Keras' defaults, categorical
    # cross-entropy, batch 128, ImageDataGenerator(rotation_range=10, width/height_shift_range=5/32,
    # horizontal_flip=True). Its normalisation: x/255, minus the scalar mean of the training set, divided by
    # the per-pixel std over the training set (``train_x.std(axis=0)``; datagen.fit computes nothing more
    # because no featurewise_* flag is set). The tutorial divides the test set by the test set's own std; here
    # the training set's statistics are used for both. Dropout(0.25) is off in the parity runs: the frameworks
    # draw different masks.
    Recipe(
        name="keras-minimodel",
        variant="minimodel",
        source="seed 001: Keras tutorial, MiniModel on CIFAR-10",
        optimizer="adam",
        lr=1e-3,
        batch=128,
        input_size=(32, 32),
        channels=3,
        betas=(0.9, 0.999),
        adam_epsilon=1e-7,
        adam_epsilon_applied="before",
        normalisation="featurewise",
        augmentation=MappingProxyType({"rotation": 10.0, "shift": 5 / 32, "hflip": True}),
        model_kwargs=MappingProxyType({"softmax": False}),
    ),
    # Seed 002 (pytorch-cifar's ResNet18, cifar stem): SGD(lr=0.1, momentum=0.9, weight_decay=5e-4),
    # CosineAnnealingLR, CrossEntropyLoss, batch 128, RandomCrop(32, padding=4) + RandomHorizontalFlip,
    # Normalize per channel. pytorch-cifar anneals per epoch over 200 epochs; here the cosine runs over the
    # run's own steps so that a short run exercises the whole schedule in each framework.
    Recipe(
        name="pytorch-cifar-resnet18",
        variant="resnet18-cifar",
        source="seed 002: pytorch-cifar ResNet18 (stem='cifar') on CIFAR-10",
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        batch=128,
        input_size=(32, 32),
        channels=3,
        momentum_convention="torch",
        schedule="cosine",
        normalisation="per_channel",
        augmentation=MappingProxyType({"crop_padding": 4, "hflip": True}),
    ),
    # Seed 003 (d2l ResNet-18 on Fashion-MNIST, resized to 96 or 224): d2l.train_ch6, i.e. plain SGD(lr=0.05),
    # CrossEntropyLoss, batch 128 (the book: 256), ToTensor only (values in [0, 1], no normalisation, no
    # augmentation). The network is the variant ``resnet18-d2l`` (1 input channel, biased convs), which
    # another branch adds; until it exists, runs of this recipe refuse and the tests skip.
    Recipe(
        name="d2l-resnet18",
        variant="resnet18-d2l",
        source="seed 003: d2l ResNet-18 on Fashion-MNIST",
        optimizer="sgd",
        lr=0.05,
        batch=128,
        input_size=(96, 96),
        channels=1,
        normalisation="none",
    ),
)

RECIPES: Mapping[str, Recipe] = MappingProxyType({r.name: r for r in _TABLE})


def recipe(name: str) -> Recipe:
    """The recipe with this name; the error lists the known names."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: expected one of {list(RECIPES)}")
    return RECIPES[name]


def unavailable_reason(r: Recipe) -> str | None:
    """Why ``r`` cannot run with this checkout's variant table (its variant is missing), else ``None``."""
    from .. import spec

    if r.variant not in spec.VARIANTS:
        return f"recipe {r.name!r} needs the variant {r.variant!r}, which this checkout's spec.VARIANTS lacks"
    return None


__all__ = ["RECIPES", "Recipe", "recipe", "unavailable_reason"]
