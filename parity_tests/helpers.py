"""What the parity tests share: framework selection, skips that say why, the shared Matrix.

Tests import these from here (``from .helpers import require``); ``conftest.py`` holds only
pytest's hooks and fixtures. Selection reads the ``--framework``/``--device`` options that
``conftest.py`` registers.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

from resnet_core import frameworks, parity, runtime, spec

runtime.set_environment()  # before any framework loads (conftest imports this module first)
# `keras` is Keras on TensorFlow here, whatever the user's KERAS_BACKEND (the other backends have their own workers)
KERAS_BACKEND_SET_ASIDE = runtime.own_keras_backend()

VARIANT_IDS = list(spec.VARIANTS)

# The suite runs from a clone and from an installed package (`resnet-parity test`). A few tests read files
# only the repository has (the notebooks, the docs catalog, the whole tree for ruff); from an installed
# package they skip, saying so. The markers tell a checkout from site-packages (which has neither).
REPO = Path(__file__).resolve().parents[1]
IN_REPOSITORY = all((REPO / p).exists() for p in ("pyproject.toml", "notebooks", "docs"))


def child_pythonpath() -> str:
    """``PYTHONPATH`` for a child Python that must import this copy of the packages first: the folder that holds
    ``parity_tests`` and ``resnet_core`` (the checkout, or site-packages), then the caller's own path."""
    return os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)


def needs_repository(what: str) -> pytest.MarkDecorator:
    """Skip (with the reason) when the suite runs from an installed package rather than a checkout."""
    return pytest.mark.skipif(
        not IN_REPOSITORY,
        reason=f"needs the repository checkout ({what}); the suite is running from the installed package in {REPO}",
    )


def package_file(package: str, name: str) -> Path:
    """A source file of one of our packages, wherever it is installed (checkout or site-packages).

    Found through the import system without importing the package, so no framework gets loaded.
    """
    found = importlib.util.find_spec(package)
    if found is None or found.origin is None:
        pytest.skip(f"{package} is not installed")
    return Path(found.origin).parent / name


def selected_frameworks(config: pytest.Config) -> list[str]:
    return list(config.getoption("--framework") or frameworks.IMPLEMENTATIONS)


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
        if fw in frameworks.WORKERS:  # Keras on another backend, in its worker process
            if reason := frameworks.missing_reason(fw):
                pytest.skip(reason)
            mod = frameworks.get(fw)
        else:
            mod = require(fw)  # imports in the safe order, or skips saying what is missing
        if device == "gpu" and (reason := mod.gpu_unavailable_reason()):
            pytest.skip(f"no GPU for {frameworks.label(fw)}: {reason}")
    return matrices.setdefault(device, parity.Matrix(device))


def jax_worker_env() -> dict[str, str]:
    """The ``JAX_*`` settings of the keras-jax worker (x64, the compilation cache), for a test's own JAX child."""
    from resnet_core import frameworks

    return {k: v for k, v in frameworks.worker_env(frameworks.WORKERS["keras-jax"]).items() if k.startswith("JAX_")}
