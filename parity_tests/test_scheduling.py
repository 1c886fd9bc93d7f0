"""How ``run.sh test`` spreads the suite over pytest-xdist workers: each variant's parity levels in one worker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from resnet_core import spec

from .conftest import matrix_group
from .helpers import REPO, needs_repository


def test_every_parity_level_test_is_grouped_by_its_variant():
    for v in spec.VARIANTS.values():
        hw = v.eval_sizes[-1]
        assert (
            matrix_group(
                f"parity_tests/test_forward.py::test_eval_forward[{v.id}-{hw[0]}x{hw[1]}-torch-to-keras-jax-cpu]"
            )
            == f"matrix-{v.id}"
        )
        assert (
            matrix_group(f"parity_tests/test_training.py::test_optimizer_step[{v.id}-paddle-to-torch-cpu-sgd]")
            == f"matrix-{v.id}"
        )
    assert matrix_group("parity_tests/test_forward.py::test_failure_message_names_layer_and_predecessors") is None
    assert matrix_group("parity_tests/test_porting.py::test_round_trip[resnet18-cifar-torch]") is None
    assert matrix_group("parity_tests/test_keras_backends.py::test_x[jax]") == "parity_tests/test_keras_backends.py"


@needs_repository("parity_tests")
def test_one_variants_levels_run_in_one_worker(tmp_path):
    """Run a variant's gradient tests under ``-n 2 --dist loadgroup`` (each test skipped at once) and read which
    worker ran each: one worker for all of them. The xdist_group marker failed exactly this under pytest 9."""
    pytest.importorskip("xdist", reason="needs pytest-xdist: pip install 'resnet-parity[test]'")
    plugin = tmp_path / "where_plugin.py"
    plugin.write_text(
        "import os, pytest\n"
        "def pytest_runtest_setup(item):\n"
        "    with open(os.environ['WHERE'], 'a') as f:\n"
        "        f.write(os.environ.get('PYTEST_XDIST_WORKER', 'main') + ' ' + item.nodeid + '\\n')\n"
        "    pytest.skip('only where it runs')\n"
    )
    where = tmp_path / "where.txt"
    env = {**os.environ, "WHERE": str(where), "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "where_plugin",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "parity_tests/test_training.py",
            "parity_tests/test_forward.py",
            "-k",
            "minimodel or test_failure_message",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [line.split(" ", 1) for line in where.read_text().splitlines()]
    workers = {w for w, nodeid in lines if matrix_group(nodeid) == "matrix-minimodel"}
    assert len([1 for _, n in lines if matrix_group(n)]) > 50 and len(workers) == 1, sorted(lines)
    assert {w for w, _ in lines} <= {"gw0", "gw1"}
