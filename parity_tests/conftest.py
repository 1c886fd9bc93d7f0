"""Shared options, parametrization and fixtures of the parity suite.

Options: ``--framework torch|keras|paddle`` (repeatable; default every installed one)
and ``--device cpu|gpu|all`` (default cpu). Fixtures named ``framework``,
``variant``, ``pair`` and ``device`` are parametrized from them, so every test
runs over the selected frameworks, all model variants and all six directions.
"""

from __future__ import annotations

import itertools
import os

# Before any framework loads: three OpenMP runtimes in one process spin against each other on
# 2 cores (a training step took 4.0 s instead of 0.3 s); quiet the frameworks' C++ logs.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_minloglevel", "2")

import pytest

from resnet_core import frameworks, spec
from resnet_core.spec import variant_config  # noqa: F401  (re-exported for the tests)
from resnet_core.names import FRAMEWORKS

VARIANT_IDS = [vid for _, _, vid in spec.VARIANTS]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resnet-parity")
    group.addoption("--framework", action="append", choices=list(FRAMEWORKS), default=None,
                    help="run only these frameworks (repeatable); pairs need both ends selected")
    group.addoption("--device", choices=["cpu", "gpu", "all"], default="cpu",
                    help="where to run the numerical levels (default cpu); a missing GPU is a skip with the reason")


def selected_frameworks(config: pytest.Config) -> list[str]:
    return list(config.getoption("--framework") or FRAMEWORKS)


def selected_devices(config: pytest.Config) -> list[str]:
    d = config.getoption("--device")
    return ["cpu", "gpu"] if d == "all" else [d]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    fws = selected_frameworks(metafunc.config)
    names = metafunc.fixturenames
    if "framework" in names:
        metafunc.parametrize("framework", fws)
    if "pair" in names:
        pairs = [p for p in itertools.permutations(FRAMEWORKS, 2) if p[0] in fws and p[1] in fws]
        metafunc.parametrize("pair", pairs, ids=[f"{a}-to-{b}" for a, b in pairs])
    if "variant" in names:
        metafunc.parametrize("variant", VARIANT_IDS)
    if "device" in names:
        devices = [pytest.param(d, marks=pytest.mark.gpu) if d == "gpu" else d for d in selected_devices(metafunc.config)]
        metafunc.parametrize("device", devices)




def require(framework: str):
    """The ``resnet_<framework>`` package, or a skip that says why it is missing."""
    if not frameworks.installed(framework):
        pytest.skip(f"{framework} is not installed (pip install 'resnet-parity[{framework}]')")
    # Import Paddle before TensorFlow whatever the test order (libpaddle crashes when loaded after TF).
    if framework == "keras" and frameworks.installed("paddle"):
        frameworks.get("paddle")
    return frameworks.get(framework)


@pytest.fixture
def fw(framework: str):
    return require(framework)
