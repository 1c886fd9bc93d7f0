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

import contextlib
import itertools

import pytest

from resnet_core import collector, frameworks
from resnet_core.frameworks import IMPLEMENTATIONS
from resnet_core.names import FRAMEWORKS
from resnet_core.parity.settings import PAIRS

from .helpers import KERAS_BACKEND_SET_ASIDE, VARIANT_IDS, require, selected_devices, selected_frameworks

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


def pytest_report_header(config: pytest.Config) -> str | None:
    """Says so when the user's ``KERAS_BACKEND`` was set aside for this run (helpers.py)."""
    return frameworks.set_aside_note(KERAS_BACKEND_SET_ASIDE) if KERAS_BACKEND_SET_ASIDE else None


def pytest_configure(config: pytest.Config) -> None:
    for name, what in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {what}")
    for f in WARNING_FILTERS:
        config.addinivalue_line("filterwarnings", f)


# With pytest-xdist (`-n 2 --dist loadgroup`, as run.sh does), the parity levels of one model variant (eval forward
# and training levels alike) run in one worker process, so that each variant's models, transfers and results are
# made once: the matrix caches them per process, and a variant split across processes would compute them twice.
# A scheduler of our own does the grouping: xdist's `xdist_group` marker works by renaming `item._nodeid`, which
# pytest 9 no longer reads (it has `_id`), so with pytest 9.2 and xdist 3.8 the marker groups nothing (measured:
# the 14 directions of one variant's gradients ran in both workers; pytest-dev/pytest-xdist#1386, open).
MATRIX_MODULES = ("test_forward.py", "test_training.py")
# Modules whose module-scoped fixtures take seconds (one child process per Keras backend: 33 s; exports and
# files written by the real libraries: 2-4 s): all their tests in one worker, so the fixture runs once.
WHOLE_MODULES = ("test_keras_backends.py", "test_keras_hub.py", "test_paddle_inference.py", "test_formats.py")


def variant_of(nodeid: str) -> str | None:
    """The model variant of a parity-level test (the longest id its parameters start with), else ``None``."""
    path, _, rest = nodeid.partition("::")
    if path.rsplit("/", 1)[-1] not in MATRIX_MODULES or "[" not in rest:
        return None
    params = rest.split("[", 1)[1]
    hits = [v for v in VARIANT_IDS if params.startswith(f"{v}-")]  # the longest: resnet18-cifar-shortcut_bias
    return max(hits, key=len) if hits else None


def matrix_group(nodeid: str) -> str | None:
    """The scheduling group of a test: ``matrix-<variant>`` for a parity level, the module for one of
    :data:`WHOLE_MODULES`, ``None`` for any other test (its own unit of work)."""
    path = nodeid.partition("::")[0]
    if path.rsplit("/", 1)[-1] in WHOLE_MODULES:
        return path
    variant = variant_of(nodeid)
    return f"matrix-{variant}" if variant else None


# The order work starts in (pytest-xdist hands units out in collection order, the largest groups first). Variants
# whose programs have the shapes of one already running start second, when JAX's compilation cache has them (the
# two CIFAR variants started side by side compiled the same programs twice). The single tests of the longest
# modules start right after the groups, longest first, instead of ending the run with one worker alone: the
# notebooks (15-80 s each), then the modules whose tests start children that import the frameworks (5-40 s each;
# test_workers.py, last in file order, ended the run with 75 s of them).
VARIANT_ORDER = ("resnet18-cifar", "resnet18-imagenet", "resnet18-cifar-shortcut_bias", "resnet18-d2l", "minimodel")
START_EARLY = ("test_notebooks.py", "test_workers.py", "test_bench.py", "test_import_order.py", "test_quiet_start.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def key(item: pytest.Item) -> tuple[int, int]:
        v = variant_of(item.nodeid)
        if v is not None:
            return 0, VARIANT_ORDER.index(v) if v in VARIANT_ORDER else len(VARIANT_ORDER)
        if item.path.name in START_EARLY:
            return 1, START_EARLY.index(item.path.name)
        return 2, 0

    items.sort(key=key)  # stable: the order within a group stays pytest's


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadgroup``: every test is its own unit of work, except each variant's parity levels and each of
    :data:`WHOLE_MODULES` (one unit each)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByVariant(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return matrix_group(nodeid) or nodeid

    return ByVariant(config, log)


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


@pytest.fixture(scope="session", autouse=True)
def frameworks_loaded(request: pytest.FixtureRequest) -> None:
    """The selected frameworks of this process, imported before the first test with the collector paused, and then
    frozen (:mod:`resnet_core.collector`): in a process that holds them, each full collection took 0.33 s, and
    test_forward.py alone ran 14 of them (2.7 s of its 32 s, measured). Imported later, test by test, each freeze
    would also keep whatever the earlier tests had left."""
    wanted = selected_frameworks(request.config)
    with collector.loading_frameworks():
        for f in frameworks.SAFE_ORDER:  # Paddle before TensorFlow
            if f in wanted and frameworks.installed(f):
                # one that fails to import fails the tests that need it, with its error, as it would without this
                with contextlib.suppress(Exception):
                    frameworks.get(f)


@pytest.fixture(scope="session")
def matrices() -> dict:
    """The session's parity matrices, one per device (see ``helpers.matrix_for``)."""
    return {}
