"""pytest's hooks and fixtures for the parity suite (shared helpers live in ``helpers.py``).

Options: ``--framework torch|keras|paddle|keras-jax|keras-torch`` (repeatable; default every
installed one) and ``--device cpu|gpu|all`` (default cpu). Fixtures named ``framework``,
``variant``, ``pair``, ``direction`` and ``device`` are parametrized from them: ``framework`` and
``pair`` (the six directions) over the frameworks in this process, ``direction`` over every
direction of the parity matrix (``settings.PAIRS``: those six, and Keras on JAX and on PyTorch,
each in its worker process, to and from PyTorch and Paddle). ``matrices`` is one set of
:class:`resnet_core.parity.Matrix` for the whole session, so models, results and worker processes
are shared by every level.
"""

from __future__ import annotations

import itertools

import pytest

from resnet_core.frameworks import IMPLEMENTATIONS
from resnet_core.names import FRAMEWORKS
from resnet_core.parity.settings import PAIRS

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


# With pytest-xdist (`-n 2 --dist loadgroup`, as run.sh does), the parity levels of one model variant run in one
# worker process, so that each variant's models, results and Keras-backend workers are made once: the matrix
# caches them per process, and a variant split across processes would compute them twice.
MATRIX_MODULES = ("test_forward.py", "test_training.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name not in MATRIX_MODULES or not hasattr(item, "callspec"):
            continue
        params = item.callspec.params
        variant = params.get("model_variant") or (params.get("case") or (None,))[0]
        if variant:
            item.add_marker(pytest.mark.xdist_group(f"{item.path.stem}-{variant}"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resnet-parity")
    group.addoption(
        "--framework",
        action="append",
        choices=list(IMPLEMENTATIONS),
        default=None,
        help="run only these frameworks (repeatable); pairs need both ends selected; keras-jax and keras-torch "
        "are Keras on those backends (the parity levels only)",
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
        metafunc.parametrize("framework", [f for f in fws if f in FRAMEWORKS])
    if "pair" in names:
        pairs = [p for p in itertools.permutations(FRAMEWORKS, 2) if p[0] in fws and p[1] in fws]
        metafunc.parametrize("pair", pairs, ids=[f"{a}-to-{b}" for a, b in pairs])
    if "direction" in names:
        pairs = [p for p in PAIRS if p[0] in fws and p[1] in fws]
        metafunc.parametrize("direction", pairs, ids=[f"{a}-to-{b}" for a, b in pairs])
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


@pytest.fixture(scope="session")
def matrices() -> dict:
    """The session's parity matrices, one per device (see ``helpers.matrix_for``)."""
    return {}
