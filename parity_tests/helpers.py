"""What the parity tests share: framework selection, skips that say why, the shared Matrix.

Tests import these from here (``from .helpers import require``); ``conftest.py`` holds only
pytest's hooks and fixtures. Selection reads the ``--framework``/``--device`` options that
``conftest.py`` registers.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from resnet_core import frameworks, parity, runtime, spec
from resnet_core.names import FRAMEWORKS

runtime.set_environment()  # before any framework loads (conftest imports this module first)

VARIANT_IDS = list(spec.VARIANTS)


def selected_frameworks(config: pytest.Config) -> list[str]:
    return list(config.getoption("--framework") or FRAMEWORKS)


def selected_devices(config: pytest.Config) -> list[str]:
    d = config.getoption("--device")
    return ["cpu", "gpu"] if d == "all" else [d]


def require(framework: str) -> ModuleType:
    """The ``resnet_<framework>`` package, or a skip that says why it is missing."""
    if not frameworks.installed(framework):
        pytest.skip(f"{framework} is not installed (pip install 'resnet-parity[{framework}]')")
    # Import Paddle before TensorFlow whatever the test order (libpaddle crashes when loaded after TF).
    if framework == "keras" and frameworks.installed("paddle"):
        frameworks.get("paddle")
    return frameworks.get(framework)  # type: ignore[return-value]


def needs(config: pytest.Config, *fws: str) -> None:
    """Skips, saying why, unless every framework is selected (``--framework``) and installed."""
    chosen = selected_frameworks(config)
    for fw in fws:
        if fw not in chosen:
            pytest.skip(f"needs {fw}, which --framework left out")
        require(fw)


def matrix_for(matrices: dict, device: str, pair: tuple[str, ...]) -> parity.Matrix:
    """The module's Matrix for ``device``; skips with the reason when a framework can't run there."""
    for fw in pair:
        mod = require(fw)  # imports in the safe order, or skips saying what is missing
        if device == "gpu" and (reason := mod.gpu_unavailable_reason()):
            pytest.skip(f"no GPU for {fw}: {reason}")
    return matrices.setdefault(device, parity.Matrix(device))
