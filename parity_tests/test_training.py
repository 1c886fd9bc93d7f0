"""Levels 3-5: train-mode forward, gradients, optimizer steps and the BN statistics update.

Every test runs over all model variants and every direction of the matrix (``a -> b``: ``a``'s random
weights and BN statistics exported by ``a`` and imported by ``b``), through
:class:`resnet_core.parity.Matrix`. Gradients and optimizer steps are compared in float64
(why: docs/framework-differences.md, "ReLU kinks"); the weights travel in float32 as a user's
would and are cast afterwards. Where the frameworks differ by design, the expected relation
is asserted: PyTorch's running_var takes the unbiased batch variance, Keras' and Paddle's the
biased one (ratio n/(n-1)); Keras' Adam epsilon sits before the bias correction.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from resnet_core import spec
from resnet_core.parity import compare, settings

from .helpers import VARIANT_IDS, matrix_for, needs


# Module-scoped (instead of conftest's function-scoped ``variant``), so pytest runs every test
# of one variant together: each framework's float64 result is computed once per variant and
# shared by all directions, and only one variant's results (~90 MB each) are kept at a time.
@pytest.fixture(scope="module", params=VARIANT_IDS)
def model_variant(request) -> str:
    return request.param


@pytest.mark.train_forward
def test_train_forward(matrices, direction, device, model_variant):
    result = matrix_for(matrices, device, direction).train_forward(model_variant, direction)
    assert not result.missing, result.message()
    assert result.passed, result.message()


@pytest.mark.gradients
def test_gradients(matrices, direction, device, model_variant):
    """Cross-entropy gradients of every trainable canonical tensor, within 1e-5 of each one's norm."""
    result = matrix_for(matrices, device, direction).gradient_parity(model_variant, direction)
    cfg = spec.variant(model_variant).config
    assert [e.name for e in result.errors] == [p.name for p in spec.param_specs(cfg) if p.trainable][
        ::-1
    ]  # backward order
    assert result.passed, result.message()


# Conv biases whose every path ends in a batch-statistics BN: the BN subtracts the batch mean,
# so their gradient is exactly zero (MiniModel's head.bn follows every unit, residual path included).
# d2l: the stem conv and both 3x3 convs of every block feed only their BN, so their biases get
# zero; the 1x1 shortcut conv (d2l's conv3, no BN after it) is added straight to the block's
# output and its bias gets a genuine gradient.
ZERO_GRADIENT_BIASES = {
    "resnet18-cifar": set(),
    "resnet18-cifar-shortcut_bias": {f"layer{i}.0.downsample.0.bias" for i in (2, 3, 4)},
    "resnet18-imagenet": set(),
    "resnet18-d2l": {"conv1.bias"}
    | {f"layer{i}.{j}.conv{k}.bias" for i in (1, 2, 3, 4) for j in (0, 1) for k in (1, 2)},
    "minimodel": {p.name for p in spec.param_specs(spec.make_config("minimodel")) if p.role == "conv.bias"},
}


@pytest.mark.gradients
def test_biases_before_batch_statistics_get_zero_gradient(matrices, framework, model_variant):
    """Exactly those tensors have a gradient that is zero up to rounding, in every framework.

    This is why GRAD_FLOOR_REL exists."""
    m = matrix_for(matrices, "cpu", (framework,))
    g = m.gradients(framework, model_variant, framework)
    total = math.sqrt(sum(float(np.sum(v**2)) for v in g.values()))
    rel = {n: float(np.linalg.norm(v)) / total for n, v in g.items()}
    zero = {n for n, r in rel.items() if r < settings.GRAD_FLOOR_REL}
    assert zero == ZERO_GRADIENT_BIASES[model_variant]
    assert (
        min(r for n, r in rel.items() if n not in zero) > 1e3 * settings.GRAD_FLOOR_REL
    )  # a wide gap, not a threshold


@pytest.mark.optimizer
@pytest.mark.parametrize("optimizer", list(settings.OPTIMIZERS))
def test_optimizer_step(matrices, direction, device, model_variant, optimizer):
    """Weight updates and BN running statistics after SGD (momentum, weight decay) or Adam agree.

    running_var is compared through the documented relation (biased increments times n/(n-1)),
    so this also asserts it in every direction that involves PyTorch.
    """
    result = matrix_for(matrices, device, direction).optimizer_parity(model_variant, direction, optimizer)
    cfg = spec.variant(model_variant).config
    assert [e.name for e in result.errors] == [p.name for p in spec.param_specs(cfg)][::-1]  # backward order
    assert result.passed, result.message()


@pytest.mark.optimizer
@pytest.mark.parametrize("other", ["keras", "paddle"])
def test_bn_running_var_relation(matrices, pytestconfig, model_variant, other):
    """PyTorch's running_var increment is exactly n/(n-1) times Keras'/Paddle's (unbiased vs biased).

    Increments are ``new - (1 - m)^k * old`` after the SGD steps; n = N*H*W at that BN.
    """
    needs(pytestconfig, "torch", other)
    m = matrix_for(matrices, "cpu", ("torch", other))
    cfg = spec.variant(model_variant).config
    before = m.held("torch", model_variant, "torch")
    assert all(np.array_equal(before[k], v) for k, v in m.held(other, model_variant, "torch").items())
    t_after, o_after = m.step("torch", model_variant, "torch", "sgd"), m.step(other, model_variant, "torch", "sgd")
    keep = (1 - spec.bn_spec(cfg).momentum) ** settings.SGD["steps"]
    n = m.bn_samples(model_variant)
    smallest = min(n, key=n.get)
    for p in spec.param_specs(cfg):
        if p.role != "bn.running_var":
            continue
        inc_t = t_after[p.name] - keep * before[p.name].astype(np.float64)
        inc_o = o_after[p.name] - keep * before[p.name].astype(np.float64)
        ratio = n[p.module] / (n[p.module] - 1)
        # 1e-5 of the increment: float64 throughout, except Paddle's float32 BN momentum (~3e-6).
        err = np.linalg.norm(inc_t - ratio * inc_o) / np.linalg.norm(inc_t)
        assert err < 1e-5, (
            f"{p.name}: torch/{other} running_var increments are not in ratio n/(n-1) = {ratio:.6f} "
            f"(n={n[p.module]}): error {err:.2e}"
        )
        if p.module == smallest:  # and the relation is visible: 1/(n-1) is far above the tolerance
            same = np.linalg.norm(inc_t - inc_o) / np.linalg.norm(inc_t)
            assert same > 100 * 1e-5, (
                f"{p.name}: increments equal within {same:.1e}, the n/(n-1) relation would go unseen"
            )


@pytest.mark.optimizer
def test_bn_sample_counts_match_the_probes(matrices, pytestconfig, model_variant):
    """The n used for n/(n-1) (from the spec) is the N*H*W each BN really sees."""
    needs(pytestconfig, "torch")
    m = matrix_for(matrices, "cpu", ("torch",))
    outs = m.probes("torch", model_variant, "torch", spec.variant(model_variant).train_size, True)
    got = {name: int(np.prod(outs[name].shape)) // outs[name].shape[1] for name in m.bn_samples(model_variant)}
    assert got == m.bn_samples(model_variant)


def _adam_update(
    g: np.ndarray,
    *,
    lr: float,
    b1: float,
    b2: float,
    eps: float,
    before_correction: bool,
    b1_corr: float | None = None,
    b2_corr: float | None = None,
) -> np.ndarray:
    """One Adam step from zero moments, as a formula (float64): the expected ``w_new - w_old``.

    ``b1_corr``/``b2_corr`` are the betas used in the bias corrections when they differ from the
    moment updates' (Keras casts them through float32).
    """
    b1_corr = b1 if b1_corr is None else b1_corr
    b2_corr = b2 if b2_corr is None else b2_corr
    m, v = (1 - b1) * g, (1 - b2) * g * g
    if before_correction:  # Keras: lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
        return -lr * math.sqrt(1 - b2_corr) / (1 - b1_corr) * m / (np.sqrt(v) + eps)
    return -lr * (m / (1 - b1_corr)) / (np.sqrt(v / (1 - b2_corr)) + eps)  # PyTorch, Paddle


@pytest.mark.optimizer
def test_adam_epsilon_at_defaults(matrices, pytestconfig, record_testsuite_property):
    """At each framework's defaults one Adam step differs: Keras' epsilon is 1e-7 and sits before the bias correction.

    Each framework's step must match the formula with its own epsilon placement (float64), and
    the Keras-vs-PyTorch difference must be the size the formulas predict. The settings under
    which they agree (Keras epsilon = eps * sqrt(1 - beta_2) for one step) are test_optimizer_step[adam].
    """
    needs(pytestconfig, "torch", "keras", "paddle")
    m = matrix_for(matrices, "cpu", ("torch", "keras", "paddle"))
    variant = "resnet18-cifar"  # no conv biases: no gradient is zero in exact arithmetic (Adam would normalise noise)
    cfg = spec.variant(variant).config
    x, y = m.input(variant, spec.variant(variant).train_size), m.labels(variant)
    lr, betas = 1e-3, (0.9, 0.999)  # the three frameworks' default lr and betas
    defaults = {"torch": 1e-8, "keras": 1e-7, "paddle": 1e-8}
    assert {fw: m.mod(fw).training.DEFAULT_ADAM_EPSILON for fw in defaults} == defaults
    f32 = lambda v: float(np.float32(v))
    names = [p.name for p in spec.param_specs(cfg) if p.trainable]
    before = m.exported(variant, "torch")  # what every framework holds before the step
    deltas, predicted = {}, {}
    for fw in defaults:
        net = m.load_float64(fw, variant, "torch")
        g = m.mod(fw).gradients(net, x, y)
        net = m.load_float64(fw, variant, "torch")  # afresh: the gradients' forward moved the BN statistics
        after = m.mod(fw).optimizer_step(net, x, y, "adam", lr=lr, betas=betas)  # eps=None: the framework's default
        deltas[fw] = {n: after[n] - before[n].astype(np.float64) for n in names}
        if fw == "keras":
            predicted[fw] = {
                n: _adam_update(
                    g[n],
                    lr=f32(lr),
                    b1=betas[0],
                    b2=betas[1],
                    eps=defaults[fw],
                    before_correction=True,
                    b1_corr=f32(betas[0]),
                    b2_corr=f32(betas[1]),
                )
                for n in names
            }
        else:
            predicted[fw] = {
                n: _adam_update(g[n], lr=lr, b1=betas[0], b2=betas[1], eps=defaults[fw], before_correction=False)
                for n in names
            }
        # 1e-9: float64 arithmetic in a different order (the formula is exact, casts included)
        c = compare.compare_tensors(predicted[fw], deltas[fw], tol=1e-9, label=f"{fw} Adam step vs its formula")
        assert c.passed, c.message()
    # The size of the difference at the defaults, relative to the update: measured = predicted.
    size = _norm_ratio(deltas["keras"], deltas["torch"])
    expected = _norm_ratio(predicted["keras"], predicted["torch"])
    record_testsuite_property("adam_defaults_keras_vs_torch_update_difference", f"{size:.3e}")
    print(f"Adam defaults, one step, {variant}: Keras vs PyTorch update differs by {size:.3e} of its norm")
    assert size == pytest.approx(expected, rel=1e-6)
    assert size > 100 * settings.STEP_TOL, f"the epsilon difference should be visible, got {size:.2e}"
    assert _norm_ratio(deltas["paddle"], deltas["torch"]) < settings.STEP_TOL  # same placement, same default


def _norm_ratio(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    diff = math.sqrt(sum(float(np.sum((a[n] - b[n]) ** 2)) for n in b))
    return diff / math.sqrt(sum(float(np.sum(b[n] ** 2)) for n in b))


@pytest.mark.optimizer
def test_keras_weight_decay_is_decoupled(matrices, pytestconfig):
    """Keras' weight_decay shrinks weights outside the momentum buffer; PyTorch's adds wd*w to the gradient.

    After two SGD steps the difference is exactly ``lr * momentum * wd * w0`` (float64, and the
    hyper-parameters are exact in float32); the agreeing mapping, L2 added to Keras' gradients,
    is what test_optimizer_step[sgd] uses.
    """
    needs(pytestconfig, "torch", "keras")
    m = matrix_for(matrices, "cpu", ("torch", "keras"))
    variant = "minimodel"
    cfg = spec.variant(variant).config
    x, y = m.input(variant, spec.variant(variant).train_size), m.labels(variant)
    hp = {k: v for k, v in settings.SGD.items() if k != "optimizer"}
    w0 = m.exported(variant, "torch")
    torch_after = m.mod("torch").optimizer_step(m.load_float64("torch", variant, "torch"), x, y, "sgd", **hp)
    keras_after = m.mod("keras").optimizer_step(
        m.load_float64("keras", variant, "torch"), x, y, "sgd", decoupled_weight_decay=True, **hp
    )
    names = [p.name for p in spec.param_specs(cfg) if p.trainable]
    expected = {n: hp["lr"] * hp["momentum"] * hp["weight_decay"] * w0[n].astype(np.float64) for n in names}
    got = {n: keras_after[n] - torch_after[n] for n in names}
    c = compare.compare_tensors(expected, got, tol=1e-6, label="Keras decoupled - PyTorch L2 after 2 SGD steps")
    assert c.passed, c.message()


def test_gradient_failure_names_the_culprit_in_backward_order():
    """A backward mistake in one layer spoils its gradients and every earlier layer's: the report walks backward."""
    cfg = spec.variant("resnet18-cifar").config
    names = [p.name for p in spec.param_specs(cfg) if p.trainable]
    rng = np.random.default_rng(0)
    ref = {n: rng.standard_normal(4) for n in names}
    culprit = names.index("layer3.0.bn1.weight")
    got = {n: v * (1.01 if i <= culprit else 1.0) for i, (n, v) in enumerate(ref.items())}
    result = compare.compare_tensors(ref, got, tol=settings.GRAD_TOL, names=names, backward=True, label="synthetic")
    assert result.first_divergence.name == "layer3.0.bn1.weight"
    msg = result.message()
    assert "first diverging tensor in backward order is 'layer3.0.bn1.weight'" in msg
    assert f"{culprit + 1} diverge" in msg and "L2 diff" in msg


BAD_INPUT = [
    (
        "label_out_of_range",
        "labels must be 2 integer classes in [0, 10) for a batch of 2; "
        "received a int64 array of shape (2,) with values 0..10",
    ),
    ("float_labels", "received a float64 array of shape (2,)"),
    ("label_count", "received a int64 array of shape (3,)"),
    ("steps", "steps must be a positive int, received 0"),
    ("optimizer", "unknown optimizer 'rmsprop': expected one of ['sgd', 'adam']"),
    ("input", "expects 3 input channels in NCHW layout"),
]


@pytest.mark.parametrize("case, message", BAD_INPUT, ids=[c for c, _ in BAD_INPUT])
def test_bad_training_input_is_a_clear_error(fw, case, message):
    net = fw.build("resnet18")
    x, y, kw = np.zeros((2, 3, 32, 32), np.float32), np.array([0, 1]), {}
    if case == "label_out_of_range":
        y = np.array([0, 10])
    elif case == "float_labels":
        y = np.array([0.5, 1.0])
    elif case == "label_count":
        y = np.array([0, 1, 2])
    elif case == "steps":
        kw = {"steps": 0}
    elif case == "optimizer":
        kw = {"optimizer": "rmsprop"}
    else:
        x = np.zeros((2, 32, 32, 3), np.float32)  # NHWC given where NCHW is expected
    before = {k: v.copy() for k, v in fw.export_weights(net).items()}
    with pytest.raises(ValueError) as e:
        fw.optimizer_step(net, x, y, **kw) if kw or case == "input" else fw.gradients(net, x, y)
    assert message in str(e.value) and "\n" not in str(e.value)
    after = fw.export_weights(net)
    assert all(np.array_equal(v, after[k]) for k, v in before.items())  # nothing half-done
