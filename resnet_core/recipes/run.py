"""Train one recipe side by side in several frameworks (and dtypes) and record where they part.

All trainers step in lock-step on the same numpy batches from the same initial weights (seeded random
weights with random BN statistics, ported through each framework's ``import_weights``). After every step the
run records, per framework and dtype, the loss and batch accuracy, and per pair the distance between the
trainable weights and between the logits of that step's batch. The distance is the scaled max-abs error the
whole suite uses, ``max|a - b| / max(1, max|a|)``, taken over every trainable tensor.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import spec
from ..frameworks import load_all
from ..porting import write_canonical
from ..training import check_dtype
from ..weights import random_weights
from . import Recipe, unavailable_reason
from .data import Dataset, batches, dataset

WEIGHT_SEED = 1  # the initial weights every framework starts from (resnet_core.parity.settings uses the same)
DATA_SEED = 0  # epoch orders and augmentation decisions
SEPARATION = 1e-3  # the threshold: trajectories "separate" once a distance exceeds it
EVAL_CHUNK = 64

Progress = Callable[[int, int], None]


def scaled_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a - b| / max(1, max|a|)`` in float64 (a NaN anywhere counts as infinitely far)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(a)))))


@dataclass
class RunResult:
    """What one run recorded. Keys: ``"torch/float64"`` for a trainer, ``"torch/float64|keras/float64"`` for a pair."""

    recipe: Recipe
    steps: int
    batch: int
    loss: dict[str, list[float]] = field(default_factory=dict)
    accuracy: dict[str, list[float]] = field(default_factory=dict)
    weight_distance: dict[str, list[float]] = field(default_factory=dict)
    logit_distance: dict[str, list[float]] = field(default_factory=dict)
    held_out_accuracy: dict[str, float] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)
    checkpoints: list[str] = field(default_factory=list)

    def distance(self, pair: str) -> list[float]:
        """Per step, the larger of the weight and the logit distance of ``pair``."""
        return [max(w, lg) for w, lg in zip(self.weight_distance[pair], self.logit_distance[pair])]

    def separation_step(self, pair: str, threshold: float = SEPARATION) -> int | None:
        """The first (1-based) step whose distance exceeds ``threshold``, or ``None`` if none does."""
        return next((i + 1 for i, d in enumerate(self.distance(pair)) if d > threshold), None)

    def images_per_s(self, key: str) -> float:
        return self.steps * self.batch / self.step_seconds[key]


def _trainable(cfg: spec.Config) -> list[str]:
    return [p.name for p in spec.param_specs(cfg) if p.trainable]


def _accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == y))


def run(
    recipe: Recipe,
    frameworks: list[str] | tuple[str, ...],
    *,
    steps: int,
    dtypes: tuple[str, ...] = ("float64",),
    batch: int | None = None,
    checkpoint_every: int = 0,
    out: str | Path | None = None,
    progress: Progress | None = None,
    data: Dataset | None = None,
    overrides: Mapping[str, Recipe] | None = None,
    evaluate: bool = True,
) -> RunResult:
    """Train ``recipe`` for ``steps`` steps in each framework and dtype, in lock-step, and record the trajectories.

    ``overrides`` gives one framework a different recipe (a deliberately different run, which the comparison
    must catch). ``checkpoint_every`` > 0 writes canonical checkpoints (float32, every trainer) under
    ``out/checkpoints``. Pairs compare frameworks within one dtype, and each framework's float32 run with its
    float64 run (rounding alone). ``evaluate=False`` skips the held-out accuracy (short test runs).
    """
    if reason := unavailable_reason(recipe):
        raise RuntimeError(reason)
    if not frameworks:
        raise ValueError("no framework to train: expected one or more of torch, keras, paddle")
    for d in dtypes:
        check_dtype(d)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, received {steps!r}")
    if checkpoint_every and out is None:
        raise ValueError("checkpoint_every needs an output folder (out)")
    mods = load_all(list(frameworks))
    if missing := [f for f in frameworks if f not in mods]:
        raise ImportError(f"framework(s) not installed: {missing}")
    variant = spec.variant(recipe.variant)
    data = dataset(recipe) if data is None else data
    size = recipe.batch if batch is None else batch
    init = random_weights(variant.config, seed=WEIGHT_SEED)
    trainers: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for fw in frameworks:
        r = (overrides or {}).get(fw, recipe)
        base = mods[fw].build(variant.model, initialize=False, **variant.kwargs, **recipe.model_kwargs)
        mods[fw].import_weights(base, init)
        for d in dtypes:
            key = f"{fw}/{d}"
            models[key] = mods[fw].cast_model(base, d)
            trainers[key] = mods[fw].make_trainer(models[key], r, steps)
    names = _trainable(variant.config)
    keys = list(trainers)
    pairs = [(a, b) for a, b in itertools.combinations(keys, 2) if a.split("/")[1] == b.split("/")[1]]
    pairs += [(f"{fw}/float64", f"{fw}/float32") for fw in frameworks if {"float32", "float64"} <= set(dtypes)]
    result = RunResult(recipe, steps, size)
    for k in keys:
        result.loss[k], result.accuracy[k], result.step_seconds[k] = [], [], 0.0
    for a, b in pairs:
        result.weight_distance[f"{a}|{b}"], result.logit_distance[f"{a}|{b}"] = [], []
    for i, (x, y) in enumerate(batches(recipe, data, steps, batch=size, seed=DATA_SEED), start=1):
        logits, weights = {}, {}
        for k in keys:
            t0 = time.perf_counter()
            loss, logits[k] = trainers[k].step(x, y)
            result.step_seconds[k] += time.perf_counter() - t0
            result.loss[k].append(loss)
            result.accuracy[k].append(_accuracy(logits[k], y))
            w = mods[k.split("/")[0]].export_weights(models[k])
            weights[k] = w
            if checkpoint_every and (i % checkpoint_every == 0 or i == steps):
                path = Path(out) / "checkpoints" / f"{k.replace('/', '-')}-step{i:05d}.safetensors"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_canonical(path, variant.config, w, k.split("/")[0])
                result.checkpoints.append(str(path))
        for a, b in pairs:
            result.weight_distance[f"{a}|{b}"].append(max(scaled_error(weights[a][n], weights[b][n]) for n in names))
            result.logit_distance[f"{a}|{b}"].append(scaled_error(logits[a], logits[b]))
        if progress:
            progress(i, steps)
    for k in keys if evaluate else ():
        chunks = range(0, len(data.test_x), EVAL_CHUNK)
        preds = [trainers[k].predict(data.normalise(data.test_x[j : j + EVAL_CHUNK])) for j in chunks]
        result.held_out_accuracy[k] = _accuracy(np.concatenate(preds), data.test_y)
    return result
