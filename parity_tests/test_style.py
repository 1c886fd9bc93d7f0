"""ruff, lint and format, over the whole repository (settings: ``[tool.ruff]`` in pyproject.toml).

Run by the README test command, so CI checks style with the tests. Fix with
``.venv/bin/ruff check --fix . && .venv/bin/ruff format .``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from .helpers import REPO, needs_repository

pytestmark = [pytest.mark.structure, needs_repository("ruff checks the whole source tree and reads pyproject.toml")]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed: pip install 'resnet-parity[test]'")
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_ruff_check_is_clean():
    proc = _ruff("check", "--no-cache", ".")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-1000:]


def test_ruff_format_is_clean():
    proc = _ruff("format", "--no-cache", "--check", ".")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-1000:]
