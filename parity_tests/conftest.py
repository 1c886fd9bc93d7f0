"""pytest's hooks and fixtures for the parity suite (shared helpers live in ``helpers.py``).

Options: ``--framework torch|keras|paddle`` (repeatable; default every installed one)
and ``--device cpu|gpu|all`` (default cpu). Fixtures named ``framework``,
``variant``, ``pair`` and ``device`` are parametrized from them, so every test
runs over the selected frameworks, all model variants and all six directions.
"""

from __future__ import annotations

import itertools

import pytest

from resnet_core.names import FRAMEWORKS

from .helpers import VARIANT_IDS, require, selected_devices, selected_frameworks

# Registered here rather than in pyproject.toml so they hold when the suite runs from the installed package
# (`resnet-parity test`), where no project ini file is read.
MARKERS = {
    "structure": "level 1, names, counts and shapes",
    "forward": "level 2, eval-mode forward parity",
    "train_forward": "level 3, train-mode forward parity",
    "gradients": "level 4, gradient parity",
    "optimizer": "level 5, one optimizer step and BN statistics update",
    "porting": "weight conversion, files and CLI",
    "catalog": "docs/framework-differences.md rows",
    "notebooks": "executes the teaching notebooks",
    "bench": "benchmark smoke",
    "gpu": "needs a GPU backend",
    "slow": "takes more than a few seconds",
}
WARNING_FILTERS = (
    "ignore::DeprecationWarning",
    "ignore:No ccache found:UserWarning",
    "ignore:When training, we now always track global mean and variance:UserWarning",
)


def pytest_configure(config: pytest.Config) -> None:
    for name, what in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {what}")
    for f in WARNING_FILTERS:
        config.addinivalue_line("filterwarnings", f)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resnet-parity")
    group.addoption(
        "--framework",
        action="append",
        choices=list(FRAMEWORKS),
        default=None,
        help="run only these frameworks (repeatable); pairs need both ends selected",
    )
    group.addoption(
        "--device",
        choices=["cpu", "gpu", "all"],
        default="cpu",
        help="where to run the numerical levels (default cpu); a missing GPU is a skip with the reason",
    )


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
        devices = [
            pytest.param(d, marks=pytest.mark.gpu) if d == "gpu" else d for d in selected_devices(metafunc.config)
        ]
        metafunc.parametrize("device", devices)


@pytest.fixture
def fw(framework: str):
    return require(framework)
