"""The framework interface, written down, and lazy access to the packages that implement it.

Every ``resnet_<framework>`` package (``resnet_torch``, ``resnet_keras``, ``resnet_paddle``)
provides :class:`FrameworkPackage` at its top level; ``parity_tests/test_interface.py`` checks
that each one does, with the same parameter names. The core reaches a framework only through
this interface and only from the top (the CLI, the parity matrix, the bench workers); the
framework packages call the core, and never hand themselves to it.

Paddle must be loaded before TensorFlow in one process (see :mod:`resnet_core.runtime`), so
:func:`load_all` imports Paddle first.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .names import FRAMEWORKS
from .spec import Config, Counts

_DISTRIBUTIONS = {"torch": ("torch",), "keras": ("keras", "tensorflow"), "paddle": ("paddle",)}
SAFE_ORDER = ("paddle", "torch", "keras")


@runtime_checkable
class FrameworkPackage(Protocol):
    """What every ``resnet_<framework>`` package provides (as module-level functions).

    Models are the framework's own objects; arrays in and out are numpy, NCHW, in canonical
    names and layouts. ``model.config`` is the model's :class:`resnet_core.spec.Config`.
    """

    FRAMEWORK: str

    # models
    def build(self, model: str, **kwargs: Any) -> Any: ...
    def config_of(self, model: Any) -> Config: ...
    def count_params(self, model: Any) -> Counts: ...

    # weights
    def export_weights(self, model: Any) -> dict[str, np.ndarray]: ...
    def import_weights(self, model: Any, weights: Mapping[str, np.ndarray]) -> None: ...

    # numerics
    def probe_outputs(self, model: Any, x: np.ndarray, *, training: bool = False) -> dict[str, np.ndarray]: ...
    def gradients(self, model: Any, x: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]: ...
    def optimizer_step(
        self, model: Any, x: np.ndarray, labels: np.ndarray, optimizer: str = "sgd", **hyper: Any
    ) -> dict[str, np.ndarray]: ...
    # a seed recipe (resnet_core.recipes.Recipe) trained with the framework's own optimizer, schedule and loop
    def make_trainer(self, model: Any, recipe: Any, total_steps: int) -> Any: ...

    # dtype and device
    def cast_model(self, model: Any, dtype: str, *, into: Any | None = None) -> Any: ...
    def on_device(self, model: Any, device: str) -> AbstractContextManager[Any]: ...
    def tf32(self, enabled: bool) -> AbstractContextManager[None]: ...
    def gpu_unavailable_reason(self) -> str | None: ...

    # files
    def load(self, path: str | os.PathLike, *, names: str | None = None, **overrides: Any) -> Any: ...
    def save(self, model: Any, path: str | os.PathLike, *, overwrite: bool = True) -> None: ...


def installed(framework: str) -> bool:
    """Whether the framework's libraries are importable (without importing them)."""
    if framework not in _DISTRIBUTIONS:
        raise ValueError(f"unknown framework {framework!r}: expected one of {list(FRAMEWORKS)}")
    return all(importlib.util.find_spec(m) is not None for m in _DISTRIBUTIONS[framework])


def available() -> list[str]:
    """Installed frameworks, in the canonical order torch, keras, paddle."""
    return [f for f in FRAMEWORKS if installed(f)]


def get(framework: str) -> FrameworkPackage:
    """The package ``resnet_<framework>`` (imported on first use)."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}: expected one of {list(FRAMEWORKS)}")
    if not installed(framework):
        raise ImportError(f"framework {framework!r} is not installed: pip install 'resnet-parity[{framework}]'")
    return importlib.import_module(f"resnet_{framework}")  # type: ignore[return-value]


def load_all(frameworks: list[str] | tuple[str, ...] | None = None) -> dict[str, ModuleType]:
    """Import several framework packages in the safe order; returns them keyed by name."""
    wanted = list(frameworks) if frameworks is not None else available()
    mods = {f: get(f) for f in SAFE_ORDER if f in wanted}
    return {f: mods[f] for f in FRAMEWORKS if f in mods}
