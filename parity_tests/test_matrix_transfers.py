"""How the parity matrix transfers weights: once per export key, and never fewer times than a real difference needs.

A direction ``a -> b`` imports what ``a`` exports into ``b`` (after a decoy). The matrix transfers into ``b`` once
per *export key* (names, types, shapes, dtypes, memory layout and bytes of the export), because ``b``'s import is
a function of that dict alone. These tests use stand-in framework packages (numpy only, no framework needed) that
count their imports and can be told to export strided views, to export lossily, or to import strided arrays
wrongly, and check that the sharing happens where the exports are the same and not where they differ.
"""

from __future__ import annotations

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
    counts = {"imports": 0}

    def import_weights(net: Net, weights: dict) -> None:
        counts["imports"] += 1
        for k, a in weights.items():
            if misreads_strides and not a.flags.c_contiguous:
                a = (a.base if a.base is not None else a).reshape(a.shape)  # its storage, read as if C-ordered
            net.w[k][...] = a

    def export_weights(net: Net) -> dict:
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

    return SimpleNamespace(
        build=lambda model, **kw: Net(), import_weights=import_weights, export_weights=export_weights, counts=counts
    )


def matrix(**mods: SimpleNamespace) -> Matrix:
    m = Matrix("cpu")
    m.mods = dict(mods)
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
