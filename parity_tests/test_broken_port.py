"""Deliberately broken ports must fail, and the message must name the layer that is wrong.

Each test breaks one thing the way a real port goes wrong -- TensorFlow's 'same' padding at
stride 2, Keras' default BN epsilon, a kernel transposed or BN tensors swapped in transit
(shapes unchanged, so no shape check can see it) -- and asserts that the parity comparison
fails with the first diverging layer named by its canonical name. The expected layer is
derived from the specification, not read back from the comparison.
"""

from __future__ import annotations

import numpy as np
import pytest

from resnet_core import names, spec
from resnet_core.parity import compare

from .helpers import matrix_for, needs, require, selected_frameworks

pytestmark = pytest.mark.forward

# (stem, (H, W)): even and odd sizes for both stems.
PADDING_CASES = [("cifar", (32, 32)), ("cifar", (45, 37)), ("imagenet", (224, 224)), ("imagenet", (199, 173))]


@pytest.fixture(scope="module")
def matrices() -> dict:
    return {}


def first_lopsided_conv(cfg: spec.ResNet18Config, height: int, width: int) -> str:
    """The first padded stride-2 conv whose input has an even side.

    TensorFlow's 'same' pads ``(k - 1) // 2`` before and the rest after, where the total is
    ``(ceil(n / s) - 1) * s + k - n``: for stride 2 and odd ``k`` that is symmetric on an odd
    side and one short at the top/left on an even side, unlike PyTorch's ``padding=(k-1)//2``.
    """

    def out(n: int, k: int, s: int, p: int) -> int:
        return (n + 2 * p - k) // s + 1

    st = cfg.stem_spec
    h, w = height, width
    if st.stride > 1 and st.padding and (h % 2 == 0 or w % 2 == 0):
        return "conv1"
    h, w = out(h, st.kernel, st.stride, st.padding), out(w, st.kernel, st.stride, st.padding)
    if st.maxpool:
        h, w = out(h, 3, 2, 1), out(w, 3, 2, 1)
    for b in spec.resnet18_blocks(cfg):
        if b.stride > 1 and (h % 2 == 0 or w % 2 == 0):
            return f"{b.name}.conv1"
        h, w = out(h, 3, b.stride, 1), out(w, 3, b.stride, 1)
    raise AssertionError(f"no lopsided conv at {height}x{width}: pick another size")


def _assert_named(result: compare.Comparison, expected: str) -> None:
    msg = result.message()
    assert not result.passed, f"the broken port passed:\n{msg}"
    assert result.first_divergence.name == expected, msg
    assert f"first diverging layer in execution order is '{expected}'" in msg
    names = [e.name for e in result.errors]
    before = names[: names.index(expected)]
    assert all(result.by_name()[n].passes(result.tol) for n in before), msg  # everything before it agrees
    assert "max-abs" in msg and "relative" in msg


@pytest.mark.parametrize("reference", ["torch", "paddle"])
@pytest.mark.parametrize("case", PADDING_CASES, ids=[f"{s}-{h}x{w}" for s, (h, w) in PADDING_CASES])
def test_same_padding_at_stride_2_is_named(matrices, pytestconfig, reference, case):
    """A Keras ResNet-18 with padding='same' at stride 2 is named at the first lopsided strided conv."""
    stem, hw = case
    needs(pytestconfig, reference, "keras")
    keras_pkg = require("keras")
    m = matrix_for(matrices, "cpu", (reference, "keras"))
    variant = "resnet18-cifar" if stem == "cifar" else "resnet18-imagenet"
    v = spec.variant(variant)
    kwargs, cfg = dict(v.kwargs), v.config
    broken = keras_pkg.models.ResNet18(**kwargs, _strided_padding="same")
    keras_pkg.import_weights(broken, m.exported(variant, reference))
    got = keras_pkg.probe_outputs(broken, m.input(variant, hw))
    ref = m.probes(reference, variant, reference, hw)
    result = compare.compare_probes(cfg, ref, got, label=f"{reference} -> keras with 'same' padding {hw[0]}x{hw[1]}")
    expected = first_lopsided_conv(cfg, *hw)
    if stem == "cifar" and hw == (32, 32):
        assert expected == "layer2.0.conv1"  # the example: the first strided conv
    if stem == "imagenet" and hw == (224, 224):
        assert expected == "conv1"
    _assert_named(result, expected)


def _set_bn_epsilon(framework: str, net, module: str, eps: float) -> None:
    if framework == "keras":
        net.get_layer(names.keras_layer(module)).epsilon = eps
    elif framework == "torch":
        dict(net.named_modules())[module].eps = eps
    else:
        dict(net.named_sublayers())[module]._epsilon = eps


@pytest.mark.parametrize("module", ["bn1", "layer3.1.bn2"])
def test_wrong_bn_epsilon_is_named(matrices, pytestconfig, framework, module):
    """Keras' default BN epsilon (1e-3 instead of 1e-5) in one layer is named at that layer."""
    pkg = require(framework)
    others = [f for f in selected_frameworks(pytestconfig) if f != framework]
    if not others:
        pytest.skip("needs a second framework as the reference")
    reference = others[0]
    require(reference)
    m = matrix_for(matrices, "cpu", (reference, framework))
    variant, hw = "resnet18-cifar", (32, 32)
    v = spec.variant(variant)
    kwargs, cfg = dict(v.kwargs), v.config
    broken = pkg.build("resnet18", **kwargs)
    pkg.import_weights(broken, m.exported(variant, reference))
    _set_bn_epsilon(framework, broken, module, 1e-3)
    result = compare.compare_probes(
        cfg,
        m.probes(reference, variant, reference, hw),
        pkg.probe_outputs(broken, m.input(variant, hw)),
        label=f"{reference} -> {framework} with BN epsilon 1e-3 at {module}",
    )
    _assert_named(result, module)


def _corrupt(weights: dict[str, np.ndarray], kind: str) -> tuple[dict[str, np.ndarray], str]:
    """A copy of ``weights`` with one mistake a converter can make without changing any shape."""
    out = {k: v.copy() for k, v in weights.items()}
    if kind == "kernel_transposed":  # H and W swapped: OIHW read as OIWH
        name = "layer1.1.conv2.weight"
        out[name] = np.ascontiguousarray(np.swapaxes(out[name], 2, 3))
        return out, "layer1.1.conv2"
    module = "layer2.0.downsample.1"  # gamma and running_var swapped, as a get_weights() order mix-up does
    out[f"{module}.weight"], out[f"{module}.running_var"] = (
        weights[f"{module}.running_var"],
        weights[f"{module}.weight"],
    )
    return out, module


@pytest.mark.parametrize("kind", ["kernel_transposed", "bn_tensors_swapped"])
def test_corrupted_weights_are_named(matrices, pair, kind):
    """Weights corrupted in transit between two frameworks are named at the layer that holds them."""
    a, b = pair
    m = matrix_for(matrices, "cpu", pair)
    variant, hw = "resnet18-cifar", (32, 32)
    cfg = spec.variant(variant).config
    corrupted, expected = _corrupt(m.exported(variant, a), kind)
    net = m.model(b, variant)
    m.mod(b).import_weights(net, corrupted)  # the strict import accepts it: every shape is right
    result = compare.compare_probes(
        cfg,
        m.probes(a, variant, a, hw),
        m.mod(b).probe_outputs(net, m.input(variant, hw)),
        label=f"{a} -> {b} with {kind}",
    )
    _assert_named(result, expected)


def _spoil(a: np.ndarray, defect: str) -> np.ndarray:
    out = a.copy()
    if defect == "shape":
        return out[..., :-1]
    out.flat[7] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[defect]
    return out


@pytest.mark.parametrize("side", ["got", "ref", "both"])
@pytest.mark.parametrize("defect", ["nan", "inf", "-inf", "shape"])
def test_a_nonfinite_or_misshaped_output_is_named_with_its_reason(side, defect):
    """A NaN, an Inf (also Inf on both sides, whose difference is a NaN) or a wrong shape at one probe or tensor
    fails there, whichever side holds it, with the reason in the message; the probes before it pass. Framework-free:
    random arrays stand in for two runs."""
    cfg = spec.variant("minimodel").config
    rng = np.random.default_rng(0)
    points = [p.name for p in spec.probes(cfg)] + ["output"]
    ref = {n: rng.standard_normal((2, 4, 3, 3)).astype(np.float32) for n in points}
    got = {n: a + np.float32(1e-7) for n, a in ref.items()}
    culprit = points[5]
    if side in ("got", "both"):
        got[culprit] = _spoil(got[culprit], defect)
    if side in ("ref", "both"):
        ref[culprit] = _spoil(ref[culprit], defect)
    reason = "shape" if defect == "shape" else "NaN/Inf values"
    if defect == "shape" and side == "both":  # the same wrong shape on both sides is no mismatch
        reason = None
    for result in (
        compare.compare_probes(cfg, ref, got, label="probes"),
        compare.compare_tensors(ref, got, tol=1e-5, label="tensors", names=points),
    ):
        if reason is None:
            assert result.passed, result.message()
            continue
        assert not result.passed
        first = result.first_divergence
        assert first is not None and first.name == culprit and reason in first.problem
        assert culprit in result.message() and reason in result.message()
        assert all(result.by_name()[n].passes(result.tol) for n in points[:5])
