"""``resnet-parity test`` runs the parity suite that is installed with the package, from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import parity_tests
from resnet_core.cli import test as cli_test

pytestmark = pytest.mark.structure


def test_the_suite_folder_is_the_imported_package():
    assert cli_test.suite_dir() == Path(parity_tests.__file__).resolve().parent
    argv = cli_test.pytest_argv(["-k", "x", "--framework", "keras"])
    assert argv[0] == str(cli_test.suite_dir()) and argv[-4:] == ["-k", "x", "--framework", "keras"]
    assert "no:cacheprovider" in argv  # nothing written into site-packages


def test_runs_the_suite_from_an_empty_folder_with_pytest_arguments(tmp_path):
    """Options after `test` reach pytest (argparse would claim them), and a failing selection fails the command."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(parity_tests.__file__).parents[1])])}
    cmd = [sys.executable, "-m", "resnet_core.cli", "test", "-q"]
    ok = subprocess.run([*cmd, "-k", "test_twins"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert " passed" in ok.stdout and "test_twins" not in ok.stderr
    none = subprocess.run([*cmd, "-k", "no_such_test_xyz"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert none.returncode == 5, none.stdout[-2000:]  # pytest's "no tests collected" comes through as the exit code
    assert list(tmp_path.iterdir()) == []  # no cache or report left in the caller's folder
