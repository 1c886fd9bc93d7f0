"""Level 2, eval-mode forward parity: every probe, in every direction of the matrix, at odd sizes too.

For a direction ``a -> b``, ``a`` holds seeded random weights and random BN statistics,
they travel through ``a``'s ``export_weights`` and ``b``'s ``import_weights``, and both
run the same input. Every probe (each conv, BN, block and stage output, the logits) must
agree within :data:`resnet_core.parity.settings.FORWARD_TOL` of ``max(1, max|ref|)``; a failure
names the first diverging layer. Results are computed once per module by
:class:`resnet_core.parity.Matrix`, which the ``report`` command runs too.
"""

from __future__ import annotations

import pytest

from resnet_core import spec
from resnet_core.parity import compare

from .helpers import matrix_for, selected_devices

pytestmark = pytest.mark.forward

CASES = [(v.id, hw) for v in spec.VARIANTS.values() for hw in v.eval_sizes]


# Module-scoped, so pytest runs all directions of one case together: each framework's
# result is computed once per case and shared, and few results are kept at a time.
@pytest.fixture(scope="module", params=CASES, ids=[f"{v}-{h}x{w}" for v, (h, w) in CASES])
def case(request) -> tuple[str, tuple[int, int]]:
    return request.param


def test_eval_forward(matrices, direction, device, case):
    variant, hw = case
    result = matrix_for(matrices, device, direction).eval_forward(variant, direction, hw)
    assert not result.missing, result.message()
    # every probe, not only the logits: the stage outputs and each layer in between
    assert len(result.errors) == len(spec.probes(spec.variant(variant).config)) + 1
    assert result.passed, result.message()


@pytest.mark.gpu
def test_tf32_error_figure(matrices, direction, pytestconfig, record_testsuite_property):
    """On a GPU, parity holds with TF32 off; the error with TF32 on is recorded as a figure."""
    if "gpu" not in selected_devices(pytestconfig):
        pytest.skip("GPU levels not selected: run with --device gpu or --device all")
    pair = direction
    m = matrix_for(matrices, "gpu", pair)
    variant, hw = "resnet18-imagenet", spec.variant("resnet18-imagenet").reference_size
    off = m.eval_forward(variant, pair, hw)
    on = m.eval_forward(variant, pair, hw, tf32=True)
    record_testsuite_property(f"tf32_off_max_error_{pair[0]}_to_{pair[1]}", f"{off.max_error:.3e}")
    record_testsuite_property(f"tf32_on_max_error_{pair[0]}_to_{pair[1]}", f"{on.max_error:.3e}")
    print(f"{pair[0]} -> {pair[1]} {variant} {hw}: max error TF32 off {off.max_error:.2e}, TF32 on {on.max_error:.2e}")
    assert off.passed, off.message()
    assert on.max_error < float("inf"), on.message()


def test_failure_message_names_layer_and_predecessors():
    """The report format itself: culprit by canonical name, its errors, the layers before it."""
    import numpy as np

    cfg = spec.variant("resnet18-cifar").config
    names = [p.name for p in spec.probes(cfg)] + ["output"]
    rng = np.random.default_rng(0)
    ref = {n: rng.standard_normal((2, 4)).astype(np.float32) for n in names}
    got = {n: v.copy() for n, v in ref.items()}
    culprit = names.index("layer3.0.conv2")
    for n in names[culprit:]:
        got[n] = got[n] + 1e-3  # diverges from here on, like a real mistake does
    result = compare.compare_probes(cfg, ref, got, label="synthetic")
    msg = result.message()
    assert not result.passed and result.first_divergence.name == "layer3.0.conv2"
    assert "first diverging layer in execution order is 'layer3.0.conv2'" in msg
    assert "max-abs 1.000e-03" in msg and "relative" in msg
    for n in names[culprit - compare.PRECEDING : culprit]:  # the layers just before it, marked ok
        assert any(
            line.strip().startswith(n + " ") and line.rstrip().endswith(("ok", "]")) for line in msg.splitlines()
        ), n
    for stage in ("maxpool", "layer1.1", "layer2.1"):  # earlier stage outputs are listed too
        assert any(line.strip().startswith(stage + " ") for line in msg.splitlines()), stage
