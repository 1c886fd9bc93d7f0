"""``resnet-parity test``: run the parity suite that is installed with the package, no repository needed.

Runs pytest on the installed ``parity_tests`` package with the rest of the command line as pytest's
arguments (``--framework keras``, ``-x``, ``-k forward``, ``--junitxml=...``). Tests that read files only a
clone has (the notebooks, the docs catalog, the ruff check of the whole tree) skip and say so; a framework
that is not installed is skipped the same way.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from . import CLIError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "pytest_args",
        nargs=argparse.REMAINDER,
        metavar="PYTEST_ARGS",
        help="passed to pytest as they are, e.g. --framework keras -x --junitxml=junit.xml",
    )


def suite_dir() -> Path:
    """The folder of the installed ``parity_tests`` package (found without importing it)."""
    found = importlib.util.find_spec("parity_tests")
    if found is None or not found.submodule_search_locations:
        raise CLIError("the parity suite (package parity_tests) is not installed with resnet-parity")
    return Path(next(iter(found.submodule_search_locations)))


def pytest_argv(pytest_args: list[str]) -> list[str]:
    """pytest's command line: the suite's folder as rootdir, no cache written into site-packages."""
    here = suite_dir()
    return [str(here), f"--rootdir={here}", "-p", "no:cacheprovider", "-ra", *pytest_args]


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("pytest") is None:
        raise CLIError("the parity suite needs pytest: pip install 'resnet-parity[test]'")
    import pytest

    return int(pytest.main(pytest_argv(list(args.pytest_args))))
