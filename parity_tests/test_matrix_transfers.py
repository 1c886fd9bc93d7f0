"""How the parity matrix transfers weights: once per export key, and never fewer times than a real difference needs.

A direction ``a -> b`` imports what ``a`` exports into ``b`` (after a decoy). The matrix transfers into ``b`` once
per *export key* (names, types, shapes, dtypes, memory layout and bytes of the export), because ``b``'s import is
a function of that dict alone. These tests use stand-in framework packages (numpy only, no framework needed) that
count their imports and can be told to export strided views, to export lossily, or to import strided arrays
wrongly, and check that the sharing happens where the exports are the same and not where they differ.
"""

from __future__ import annotations

import contextlib
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from resnet_core import spec
from resnet_core.parity import Matrix

VARIANT = "minimodel"  # the smallest; nothing is run, only imported and exported


class Net:
    def __init__(self) -> None:
        cfg = spec.variant(VARIANT).config
        self.w = {p.name: np.zeros(p.shape, np.float32) for p in spec.param_specs(cfg)}


def fake(*, strided: bool = False, lossy: bool = False, misreads_strides: bool = False) -> SimpleNamespace:
    """A stand-in framework package: ``strided`` exports transposed views (as Keras' HWIO -> OIHW does), ``lossy``
    rounds one tensor on export, ``misreads_strides`` imports an array's memory in storage order (a bug that only
    a strided export shows)."""
    counts = {"imports": 0, "runs": 0}
    threads: set[int] = set()  # every thread that used this framework

    def import_weights(net: Net, weights: dict) -> None:
        threads.add(threading.get_ident())
        counts["imports"] += 1
        for k, a in weights.items():
            if misreads_strides and not a.flags.c_contiguous:
                a = (a.base if a.base is not None else a).reshape(a.shape)  # its storage, read as if C-ordered
            net.w[k][...] = a

    def export_weights(net: Net) -> dict:
        threads.add(threading.get_ident())
        out = {}
        for k, a in net.w.items():
            if strided and a.ndim == 4:
                a = np.ascontiguousarray(a.transpose(2, 3, 1, 0)).transpose(3, 2, 0, 1)  # a view, HWIO underneath
            elif lossy and k.endswith("running_var"):
                a = a.astype(np.float16).astype(np.float32)
            else:
                a = a.copy()
            out[k] = a
        return out

    def probe_outputs(net: Net, x: np.ndarray, training: bool = False) -> dict:
        """Every probe: the first weights of every tensor, plus the input's mean (a stand-in forward pass)."""
        threads.add(threading.get_ident())
        counts["runs"] += 1
        value = np.concatenate([a.ravel()[:8] for a in net.w.values()])[None, :] + float(np.mean(x))
        cfg = spec.variant(VARIANT).config
        return {**{p.name: value for p in spec.probes(cfg)}, "output": value}

    return SimpleNamespace(
        build=lambda model, **kw: Net(),
        import_weights=import_weights,
        export_weights=export_weights,
        probe_outputs=probe_outputs,
        on_device=lambda net, device: contextlib.nullcontext(net),
        counts=counts,
        threads=threads,
    )


def matrix(**mods: SimpleNamespace) -> Matrix:
    m = Matrix("cpu")
    m.mods = dict(mods)
    m.unavailable = lambda fw: None  # the stand-ins need nothing installed
    return m


def test_sources_with_the_same_export_cost_the_target_one_transfer():
    """Three sources exporting the same contiguous bytes: the target imports once (decoy + transfer), one digest."""
    m = matrix(a=fake(), b=fake(), c=fake(), t=fake())
    digests = {src: m.digest("t", VARIANT, src) for src in "abc"}
    assert len(set(digests.values())) == 1
    assert m.mods["t"].counts["imports"] == 2  # the decoy, then one transfer for all three sources
    held_c, held_a = m.held("t", VARIANT, "c"), m.held("t", VARIANT, "a")
    assert all(np.array_equal(held_c[k], held_a[k]) for k in held_a)


def test_a_strided_export_gets_its_own_transfer():
    """The same bytes in another memory layout are another input to an import: transferred on their own."""
    m = matrix(a=fake(), k=fake(strided=True), t=fake())
    assert m.digest("t", VARIANT, "a") == m.digest("t", VARIANT, "k")  # a correct import: the same weights
    assert m.mods["t"].counts["imports"] == 4  # two transfers, each after a decoy


def test_an_import_that_misreads_strides_is_caught_in_that_direction():
    """A target that reads strided arrays in storage order: only the direction from the strided source differs."""
    m = matrix(a=fake(), k=fake(strided=True), t=fake(misreads_strides=True))
    assert m.digest("t", VARIANT, "a") == m.digest("a", VARIANT, "a")
    assert m.digest("t", VARIANT, "k") != m.digest("t", VARIANT, "a")


def test_a_lossy_export_gets_its_own_transfer_and_digest():
    m = matrix(a=fake(), lossy=fake(lossy=True), t=fake())
    assert m.digest("t", VARIANT, "a") != m.digest("t", VARIANT, "lossy")
    assert m.mods["t"].counts["imports"] == 4


@pytest.mark.parametrize("mutate", ["model", "load"])
def test_a_model_handed_out_is_reloaded_before_the_matrix_uses_it_again(mutate):
    """The caller of model()/load() may change the model; the matrix's next use re-imports what it should hold."""
    m = matrix(a=fake(), t=fake())
    want = m.held("t", VARIANT, "a")
    net = m.model("t", VARIANT) if mutate == "model" else m.load("t", VARIANT, "a")[0]
    for a in net.w.values():
        a[...] = 7.0
    before = m.mods["t"].counts["imports"]
    again, _ = m.load("t", VARIANT, "a")
    assert m.mods["t"].counts["imports"] == before + 2  # the decoy, then the transfer again
    assert all(np.array_equal(again.w[k], want[k]) for k in want)


# rows(): the worker implementations (named as in frameworks.WORKERS) compute in threads beside this process
PAIRS = [("torch", "keras-jax"), ("keras-jax", "torch"), ("paddle", "keras-jax"), ("keras-jax", "paddle"),
         ("torch", "paddle"), ("paddle", "torch"), ("torch", "keras-torch"), ("keras-torch", "torch")]  # fmt: skip


def stand_ins(**kinds: dict) -> dict[str, SimpleNamespace]:
    return {fw: fake(**kinds.get(fw, {})) for fw in ("torch", "paddle", "keras-jax", "keras-torch")}


@pytest.mark.parametrize("level", ["eval", "train"])
def test_rows_gives_the_rows_of_level_by_level(level):
    """The same rows and numbers as one direction at a time, and one transfer into a worker for two sources that
    export the same bytes; a lossy source still gets its own transfer and its own (failing) numbers."""
    kinds = {"paddle": {"lossy": True}}
    together = matrix(**stand_ins(**kinds)).rows(level, VARIANT, PAIRS)
    one_by_one_matrix = matrix(**stand_ins(**kinds))
    one_by_one = [r for pair in PAIRS for r in one_by_one_matrix.level(level, VARIANT, pair)]
    assert [(r.direction, r.detail) for r in together] == [(r.direction, r.detail) for r in one_by_one]
    assert [r.comparison.max_error for r in together] == [r.comparison.max_error for r in one_by_one]
    assert [r.passed for r in together] == [r.passed for r in one_by_one]
    lossy = [r.passed for r in together if "paddle" in r.direction]
    assert not all(lossy) and any(lossy)  # from paddle fails (its export is lossy), into paddle passes
    assert all(r.passed for r in together if "paddle" not in r.direction)


def test_compute_makes_several_levels_at_once_and_rows_finds_them():
    """``compute(["eval", "train"])`` (what ``report`` runs first): then ``rows`` level by level gives the rows and
    numbers of ``rows`` alone, and runs nothing more in any implementation."""
    kinds = {"paddle": {"lossy": True}}
    alone = matrix(**stand_ins(**kinds))
    want = [r for level in ("eval", "train") for r in alone.rows(level, VARIANT, PAIRS)]
    mods = stand_ins(**kinds)
    m = matrix(**mods)
    m.compute(["eval", "train"], VARIANT, PAIRS)
    runs = {fw: mod.counts["runs"] for fw, mod in mods.items()}
    assert all(runs.values())
    got = [r for level in ("eval", "train") for r in m.rows(level, VARIANT, PAIRS)]
    assert {fw: mod.counts["runs"] for fw, mod in mods.items()} == runs
    assert [(r.direction, r.level, r.detail) for r in got] == [(r.direction, r.level, r.detail) for r in want]
    assert [r.comparison.max_error for r in got] == [r.comparison.max_error for r in want]
    assert [r.passed for r in got] == [r.passed for r in want]
    assert not all(r.passed for r in got)  # the lossy source's directions still fail
    with pytest.raises(ValueError, match=r"unknown level\(s\) \['evl'\]: expected some of \['structure', 'eval'"):
        m.compute(["eval", "evl"], VARIANT, PAIRS)


def test_each_thread_uses_only_its_own_implementation():
    """The frameworks of this process are used from the calling thread only, each worker implementation from one
    thread of its own: the sources' exports are handed to the workers' threads as copies."""
    mods = stand_ins()
    m = matrix(**mods)
    m.rows("eval", VARIANT, PAIRS)
    main = threading.get_ident()
    assert mods["torch"].threads == {main} and mods["paddle"].threads == {main}
    workers = [mods[w].threads for w in ("keras-jax", "keras-torch")]
    assert all(len(t) == 1 and main not in t for t in workers)
    assert mods["keras-jax"].counts["imports"] == 3  # its own weights; the decoy and torch's (paddle's is the same)
    assert not m._handed  # the copies are dropped


def test_a_failure_in_this_process_is_raised_as_it_is():
    """When this process fails before handing an export over, the threads end and its own error is raised."""
    mods = stand_ins()

    def broken(net):
        raise ValueError("paddle export broke")

    mods["paddle"].export_weights = broken
    m = matrix(**mods)
    with pytest.raises(ValueError, match="paddle export broke"):
        m.rows("eval", VARIANT, PAIRS)
    assert not m._handed
    assert threading.active_count() == 1 or all(not t.name.startswith("ThreadPool") for t in threading.enumerate())
