"""``resnet_core`` stays framework-free: every module imports with the frameworks blocked.

Each check runs in a fresh interpreter whose import system refuses torch, tensorflow, keras,
paddle and jax, then imports every module of ``resnet_core`` (found by walking the package, so
a new module is covered without editing this test) and checks that no framework got loaded.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.structure

REPO = Path(__file__).resolve().parents[1]
BLOCKED = ("torch", "tensorflow", "keras", "paddle", "jax", "jaxlib")

BLOCKER = textwrap.dedent(
    f"""
    import importlib, pkgutil, sys

    BLOCKED = {BLOCKED!r}

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked by the framework-free test: {{name}}")
            return None

    sys.meta_path.insert(0, Block())
    """
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_core_module_imports_without_a_framework():
    proc = _run(
        """
        import resnet_core
        names = sorted(m.name for m in pkgutil.walk_packages(resnet_core.__path__, "resnet_core.")
                       if not m.name.endswith("__main__"))
        for name in names:
            importlib.import_module(name)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        print(len(names), "modules")
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    count = int(proc.stdout.split()[0])
    assert count >= 20, proc.stdout  # the walk really found the package's modules


def test_the_blocker_blocks():
    """The check can fail: a framework package does not import under the blocker."""
    proc = _run("import resnet_torch")
    assert proc.returncode != 0
    assert "blocked by the framework-free test: torch" in proc.stderr
