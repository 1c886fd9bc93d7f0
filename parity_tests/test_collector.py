"""The cyclic garbage collector in our own processes (:mod:`resnet_core.collector`).

Each case runs in a child process: freezing the objects of the pytest process would keep them for its whole life.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from .helpers import child_pythonpath


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": child_pythonpath()}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_loading_frameworks_pauses_the_collector_then_freezes_what_exists():
    """Paused inside the block, as it was after it (also after an exception, and when it was off before); the objects
    that exist at its end are frozen (full collections skip them), while garbage made later is still collected."""
    out = _run(
        """
        import gc
        from resnet_core import collector

        class Cycle:
            def __init__(self):
                self.me = self

        assert gc.isenabled()
        before = gc.get_freeze_count()  # Python 3.12 starts with a few hundred of its own objects frozen
        with collector.loading_frameworks():
            assert not gc.isenabled()
            kept = [Cycle() for _ in range(10_000)]  # what an import leaves behind
        assert gc.isenabled()
        assert gc.get_freeze_count() >= before + 10_000, (before, gc.get_freeze_count())

        try:
            with collector.loading_frameworks():
                raise KeyError("inside")
        except KeyError:
            pass
        assert gc.isenabled()

        gc.disable()
        with collector.loading_frameworks():
            pass
        assert not gc.isenabled()  # a caller's own setting stays
        gc.enable()

        [Cycle() for _ in range(1_000)]  # garbage made afterwards
        assert gc.collect() >= 1_000
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_report_loads_its_frameworks_with_the_collector_paused():
    """``resnet-parity report`` imports the frameworks through :func:`~resnet_core.collector.loading_frameworks`
    (a library call such as ``frameworks.load_all`` itself leaves the collector alone)."""
    out = _run(
        """
        import gc
        from resnet_core import frameworks
        from resnet_core.cli import main

        seen = []

        def load_all(fws=None):
            seen.append(gc.isenabled())
            raise RuntimeError("stop here")

        frameworks.available = lambda implementations=False: ["torch", "paddle"]
        frameworks.load_all = load_all
        before = gc.get_freeze_count()
        assert main(["report", "--quick", "--framework", "torch", "--framework", "paddle"]) == 2
        print(seen, gc.isenabled(), gc.get_freeze_count() > before)
        """
    )
    assert out.strip() == "[False] True True"
