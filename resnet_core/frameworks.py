"""Lazy access to the framework packages, in an import order that is always safe.

Paddle must be loaded before TensorFlow in one process (see
:mod:`resnet_core.import_order`), so :func:`load_all` imports Paddle first.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .names import FRAMEWORKS

_DISTRIBUTIONS = {"torch": ("torch",), "keras": ("keras", "tensorflow"), "paddle": ("paddle",)}
SAFE_ORDER = ("paddle", "torch", "keras")


def installed(framework: str) -> bool:
    """Whether the framework's libraries are importable (without importing them)."""
    if framework not in _DISTRIBUTIONS:
        raise ValueError(f"unknown framework {framework!r}: expected one of {list(FRAMEWORKS)}")
    return all(importlib.util.find_spec(m) is not None for m in _DISTRIBUTIONS[framework])


def available() -> list[str]:
    """Installed frameworks, in the canonical order torch, keras, paddle."""
    return [f for f in FRAMEWORKS if installed(f)]


def get(framework: str) -> ModuleType:
    """The package ``resnet_<framework>`` (imported on first use)."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}: expected one of {list(FRAMEWORKS)}")
    if not installed(framework):
        extra = {"torch": "torch", "keras": "keras", "paddle": "paddle"}[framework]
        raise ImportError(f"framework {framework!r} is not installed: pip install 'resnet-parity[{extra}]'")
    return importlib.import_module(f"resnet_{framework}")


def load_all(frameworks: list[str] | tuple[str, ...] | None = None) -> dict[str, ModuleType]:
    """Import several framework packages in the safe order; returns them keyed by name."""
    wanted = list(frameworks) if frameworks is not None else available()
    mods = {f: get(f) for f in SAFE_ORDER if f in wanted}
    return {f: mods[f] for f in FRAMEWORKS if f in mods}
