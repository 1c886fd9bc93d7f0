"""The catalog, docs/framework-differences.md: every row names a test that exists, and the rows'
claims about the libraries themselves are proved here, one small test per difference.

The expected values are the libraries' documented behaviour, written out, not read from the
code under test.
"""

from __future__ import annotations

import ast
import pathlib
import re

import numpy as np
import pytest

from resnet_core import spec
from resnet_core.names import FRAMEWORKS
from resnet_core.parity.settings import FORWARD_TOL
from resnet_core.weights import random_weights

from .helpers import needs, needs_repository, require

pytestmark = pytest.mark.catalog

ROOT = pathlib.Path(__file__).resolve().parents[1]
CATALOG = ROOT / "docs" / "framework-differences.md"
TEST_ID = re.compile(r"`(parity_tests/test_\w+\.py)::(test_\w+)`")
# Topics the issue requires the catalog to cover (matched, case-insensitive, in a row's first column).
REQUIRED_TOPICS = [
    "layout",
    "padding",
    "momentum",
    "epsilon",
    "variance",
    "parameter count",
    "optimizer epsilon",
    "weight decay",
    "dtype",
    "tf32",
    "import order",
    "flatten",
    "max-pool",
    "dropout",
    "num_batches_tracked",
]


def _rows() -> list[list[str]]:
    """The catalog's table rows, as lists of cell texts (header and rule excluded)."""
    rows = []
    for line in CATALOG.read_text().splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0].lower() in ("difference", "topic"):
            continue
        rows.append(cells)
    return rows


@pytest.fixture
def all_three(pytestconfig) -> None:
    """Skips, saying why, unless all three frameworks are selected and installed (imported in the safe order)."""
    needs(pytestconfig, *FRAMEWORKS)


def _defined_tests(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


@needs_repository("docs/framework-differences.md")
def test_every_row_names_a_test_that_exists():
    rows = _rows()
    assert len(rows) >= len(REQUIRED_TOPICS)
    problems = []
    for cells in rows:
        ids = TEST_ID.findall(" ".join(cells))
        if not ids:
            problems.append(f"row {cells[0]!r} names no test")
        for file, name in ids:
            path = ROOT / file
            if not path.is_file():
                problems.append(f"row {cells[0]!r}: {file} does not exist")
            elif name not in _defined_tests(path):
                problems.append(f"row {cells[0]!r}: {file} has no {name}")
    assert not problems, "\n".join(problems)


@needs_repository("docs/framework-differences.md")
def test_catalog_covers_the_required_topics():
    firsts = " ".join(cells[0].lower() for cells in _rows())
    missing = [t for t in REQUIRED_TOPICS if t not in firsts]
    assert not missing, f"catalog rows missing for: {missing}"


# ----------------------------------------------------------------------------- BatchNorm
def test_bn_defaults(all_three):
    """Default BatchNorm constants: Keras' epsilon is 100x PyTorch's and Paddle's; momentum is stated two ways."""
    import keras
    import paddle
    import torch

    t = torch.nn.BatchNorm2d(4)
    k = keras.layers.BatchNormalization()
    p = paddle.nn.BatchNorm2D(4)
    assert (t.eps, t.momentum) == (1e-5, 0.1)  # weight of the new batch statistic
    assert (k.epsilon, k.momentum) == (1e-3, 0.99)  # weight of the old running value
    assert (p._epsilon, p._momentum) == (1e-5, 0.9)  # weight of the old running value


# running_var takes the batch variance with this divisor (n = N*H*W samples per channel).
VARIANCE_DIVISOR = {"torch": "n-1", "keras": "n", "paddle": "n"}


def _bn_train_step(framework: str, x: np.ndarray, old_mean: np.ndarray, old_var: np.ndarray, new_weight: float):
    """One train-mode batch through a 4-channel BN built with the spec's momentum mapping; returns (mean, var)."""
    if framework == "torch":
        import torch

        bn = torch.nn.BatchNorm2d(4, momentum=new_weight)
        bn.running_mean.copy_(torch.from_numpy(old_mean))
        bn.running_var.copy_(torch.from_numpy(old_var))
        bn.train()(torch.from_numpy(x))
        return bn.running_mean.numpy(), bn.running_var.numpy()
    if framework == "paddle":
        import paddle

        bn = paddle.nn.BatchNorm2D(4, momentum=1 - new_weight)
        bn._mean.set_value(old_mean)
        bn._variance.set_value(old_var)
        bn.train()
        bn(paddle.to_tensor(x))
        return bn._mean.numpy(), bn._variance.numpy()
    import keras

    bn = keras.layers.BatchNormalization(momentum=1 - new_weight)
    bn.build((None, *x.shape[2:], 4))
    bn.moving_mean.assign(old_mean)
    bn.moving_variance.assign(old_var)
    bn(np.transpose(x, (0, 2, 3, 1)), training=True)
    return keras.ops.convert_to_numpy(bn.moving_mean), keras.ops.convert_to_numpy(bn.moving_variance)


def test_bn_running_statistics_update(fw, framework):
    """running = (1 - m) * running + m * batch, PyTorch's m (Keras, Paddle take 1 - m).

    Only PyTorch's running_var uses n-1."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 4, 3, 3)) * 2 + 1).astype(np.float32)  # n = 18: 1/(n-1) is visible
    old_mean, old_var = rng.uniform(-1, 1, 4).astype(np.float32), rng.uniform(0.5, 2, 4).astype(np.float32)
    m = 0.1
    mean, var = _bn_train_step(framework, x, old_mean, old_var, m)
    xs = x.astype(np.float64)
    n = xs.size // 4
    batch_var = xs.var(axis=(0, 2, 3)) * (n / (n - 1) if VARIANCE_DIVISOR[framework] == "n-1" else 1.0)
    np.testing.assert_allclose(mean, (1 - m) * old_mean + m * xs.mean(axis=(0, 2, 3)), rtol=1e-6, atol=1e-6)
    # 1e-6: float32 of one layer; the other divisor would be off by 0.1 * var / 17, ~1e-2
    np.testing.assert_allclose(var, (1 - m) * old_var + m * batch_var, rtol=1e-6, atol=1e-6)


def test_paddle_bn_momentum_is_float32(pytestconfig):
    """Paddle passes BN momentum as a float32 attribute: a float64 model updates with 0.9 rounded to float32."""
    needs(pytestconfig, "paddle")
    import paddle

    bn = paddle.nn.BatchNorm2D(4, momentum=0.9)
    bn.to(dtype="float64")
    old = np.array([0.5, -0.3, 0.2, 0.1])
    bn._mean.set_value(old)
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5))
    bn.train()
    bn(paddle.to_tensor(x))
    batch = x.mean(axis=(0, 2, 3))
    m32 = float(np.float32(0.9))
    np.testing.assert_allclose(bn._mean.numpy(), m32 * old + (1 - m32) * batch, rtol=1e-14, atol=1e-15)
    assert not np.allclose(bn._mean.numpy(), 0.9 * old + 0.1 * batch, rtol=1e-12, atol=1e-12)


def test_frozen_batchnorm(all_three):
    """Keras 3 runs a BN with trainable=False in inference mode even under training=True; PyTorch and Paddle do not."""
    import keras
    import paddle
    import torch

    x = (np.random.default_rng(0).standard_normal((16, 4)) * 3 + 2).astype(np.float32)
    k = keras.layers.BatchNormalization()
    k.build((None, 4))
    k.trainable = False
    t = torch.nn.BatchNorm1d(4).requires_grad_(False).train()
    p = paddle.nn.BatchNorm1D(4)
    for w in p.parameters():
        w.stop_gradient = True
    p.train()
    keras_out = keras.ops.convert_to_numpy(k(x, training=True))
    np.testing.assert_allclose(keras_out, x / np.sqrt(1 + 1e-3), rtol=1e-5)  # moving stats 0 and 1
    for out in (t(torch.from_numpy(x)).numpy(), p(paddle.to_tensor(x)).numpy()):  # batch statistics
        np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)


# ----------------------------------------------------------------------------- counting, names, dtypes
def test_parameter_counting(all_three):
    """Each library's own count differs: Keras and Paddle count BN statistics as parameters, PyTorch does not."""
    rt, rk, rp = require("torch"), require("keras"), require("paddle")
    cfg = spec.make_config("resnet18")
    want = spec.counts(cfg)  # 11,173,962 trainable + 9,600 BN statistics (test_structure states the figures)
    assert rk.build("resnet18").count_params() == want.trainable + want.bn_statistics
    assert sum(int(np.prod(w.shape)) for w in rp.build("resnet18").parameters()) == want.trainable + want.bn_statistics
    assert sum(w.numel() for w in rt.build("resnet18").parameters()) == want.trainable


def test_torch_num_batches_tracked(pytestconfig):
    """PyTorch BN keeps an int64 num_batches_tracked buffer the others lack; it is not part of the canonical weights."""
    needs(pytestconfig, "torch")
    rt = require("torch")
    import torch

    net = rt.build("resnet18")
    tracked = {k: v for k, v in net.state_dict().items() if k.endswith("num_batches_tracked")}
    n_bn = sum(isinstance(layer, spec.BatchNorm) for layer in spec.layers(spec.make_config("resnet18")))
    assert len(tracked) == n_bn == 20 and all(v.dtype == torch.int64 for v in tracked.values())
    assert not any(k.endswith("num_batches_tracked") for k in rt.export_weights(net))
    net.train()(torch.zeros(2, 3, 32, 32))
    assert all(int(v) == 1 for k, v in net.state_dict().items() if k.endswith("num_batches_tracked"))


def test_default_dtypes(all_three):
    """All three default to float32; a float64 input (numpy's default) fails deep inside a PyTorch or
    Paddle layer but is cast silently by a Keras layer. Our models refuse it the same way in all three
    (``spec.check_input``: the input's dtype must be the weights')."""
    rt, rk, rp = require("torch"), require("keras"), require("paddle")
    import keras
    import paddle
    import torch

    assert (torch.get_default_dtype(), keras.config.floatx(), paddle.get_default_dtype()) == (
        torch.float32,
        "float32",
        "float32",
    )
    x64 = np.zeros((1, 3, 8, 8))  # numpy's default float64
    assert torch.from_numpy(x64).dtype == torch.float64 and paddle.to_tensor(x64).dtype == paddle.float64
    with pytest.raises(RuntimeError):
        torch.nn.Conv2d(3, 4, 3)(torch.from_numpy(x64))
    with pytest.raises((ValueError, RuntimeError)):
        paddle.nn.Conv2D(3, 4, 3)(paddle.to_tensor(x64))
    out = keras.layers.Conv2D(4, 3)(np.transpose(x64, (0, 2, 3, 1)))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    xm = np.zeros((1, 3, 32, 32))
    with pytest.raises(TypeError, match=r"expects float32 input.*received float64"):
        rt.build("resnet18").eval()(torch.from_numpy(xm))
    net = rp.build("resnet18")
    net.eval()
    with pytest.raises(TypeError, match=r"expects float32 input.*received float64"):
        net(paddle.to_tensor(xm))
    with pytest.raises(TypeError, match=r"expects float32 input.*received float64"):
        rk.build("resnet18")(np.transpose(xm, (0, 2, 3, 1)), training=False)


def test_nan_input(all_three):
    """NaN in, NaN out in PyTorch and Keras; Paddle's ReLU maps NaN to 0, so its logits come out finite.

    Proved on the ReLU itself and on a whole model with the same random weights and BN statistics.
    """
    rt, rk, rp = require("torch"), require("keras"), require("paddle")
    import keras
    import paddle
    import torch

    v = np.array([np.nan, -1.0, 2.0], np.float32)
    assert np.isnan(torch.relu(torch.from_numpy(v)).numpy()[0])
    assert np.isnan(keras.ops.convert_to_numpy(keras.layers.ReLU()(v))[0])
    assert paddle.nn.ReLU()(paddle.to_tensor(v)).numpy()[0] == 0.0
    cfg = spec.make_config("resnet18")
    w = random_weights(cfg, seed=11)
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    x[0, :, 5, 7] = np.nan  # one pixel of the first sample
    outs = {}
    for name, mod in (("torch", rt), ("keras", rk), ("paddle", rp)):
        net = mod.build("resnet18")
        mod.import_weights(net, w)
        outs[name] = mod.probe_outputs(net, x)["output"]
    assert np.isnan(outs["torch"][0]).all() and np.isnan(outs["keras"][0]).all()
    assert np.isfinite(outs["paddle"]).all()
    # The other sample never saw the NaN: all three agree on it (eval mode, no batch statistics).
    ref = outs["torch"][1]
    for other in ("keras", "paddle"):  # scaled as the parity suite scales eval errors
        assert np.abs(outs[other][1] - ref).max() / np.abs(ref).max() <= FORWARD_TOL, other


def test_numpy_conversion_copies_or_shares(all_three):
    """PyTorch's .numpy() shares memory with the tensor; Paddle's and Keras' conversions copy."""
    import keras
    import paddle
    import torch

    t = torch.zeros(3)
    a = t.numpy()
    t += 1
    assert a.tolist() == [1, 1, 1]
    p = paddle.zeros([3])
    b = p.numpy()
    p.set_value(np.ones(3, "float32"))
    assert b.tolist() == [0, 0, 0]
    v = keras.Variable(np.zeros(3, "float32"))
    c = keras.ops.convert_to_numpy(v)
    v.assign(np.ones(3, "float32"))
    assert c.tolist() == [0, 0, 0]


# ----------------------------------------------------------------------------- TF32
def _tf32_state(framework: str) -> dict[str, object]:
    if framework == "torch":
        import torch

        return {"conv": torch.backends.cudnn.conv.fp32_precision, "matmul": torch.backends.cuda.matmul.fp32_precision}
    if framework == "keras":
        import tensorflow as tf

        return {"all": tf.config.experimental.tensor_float_32_execution_enabled()}
    import paddle

    return {"cudnn": paddle.base.core.get_cudnn_switch()}


def test_tf32_defaults_and_switches(fw, framework):
    """TF32 is on by default for convolutions in all three (PyTorch: not matmuls).

    The suite's switch turns it off and back."""
    default = {"torch": {"conv": "tf32", "matmul": "none"}, "keras": {"all": True}, "paddle": {"cudnn": True}}[
        framework
    ]
    off = {"torch": {"conv": "ieee", "matmul": "ieee"}, "keras": {"all": False}, "paddle": {"cudnn": False}}[framework]
    assert _tf32_state(framework) == default
    with fw.tf32(False):
        assert _tf32_state(framework) == off
    assert _tf32_state(framework) == default


# ----------------------------------------------------------------------------- layers
def test_flatten_order(pytestconfig):
    """Flatten after NHWC (Keras) orders features (h, w, c), after NCHW (PyTorch, Paddle) (c, h, w).

    Equal only for 1x1."""
    needs(pytestconfig, "torch", "keras")
    import keras
    import torch

    for hw, same in ((2, False), (1, True)):
        x = np.arange(2 * 3 * hw * hw, dtype=np.float32).reshape(2, 3, hw, hw)
        t = torch.flatten(torch.from_numpy(x), 1).numpy()
        k = keras.ops.convert_to_numpy(keras.layers.Flatten()(np.transpose(x, (0, 2, 3, 1))))
        assert np.array_equal(t, k) == same
    # ... and both models pool to 1x1 before flattening, so their Dense/Linear weights need no permutation
    for model, kwargs in ((v.model, dict(v.kwargs)) for v in spec.VARIANTS.values()):
        cfg = spec.make_config(model, **kwargs)
        assert spec.stage_shapes(cfg, 32, 32)["pool"][1:] == (1, 1)


def test_maxpool_padding_value(all_three):
    """PyTorch and Paddle pad max-pooling with -inf; Keras' ZeroPadding2D + valid pooling pads 0.

    Equal after a ReLU only."""
    import keras
    import paddle
    import torch

    x = -np.random.default_rng(0).uniform(1, 2, (1, 2, 6, 6)).astype(np.float32)  # all negative
    for data, same in ((x, False), (np.maximum(x + 1.5, 0), True)):
        t = torch.nn.MaxPool2d(3, 2, 1)(torch.from_numpy(data)).numpy()
        p = paddle.nn.MaxPool2D(3, 2, 1)(paddle.to_tensor(data)).numpy()
        nhwc = np.transpose(data, (0, 2, 3, 1))
        k = keras.layers.MaxPooling2D(3, 2, padding="valid")(keras.layers.ZeroPadding2D(1)(nhwc))
        k = np.transpose(keras.ops.convert_to_numpy(k), (0, 3, 1, 2))
        assert np.array_equal(t, p)
        assert np.array_equal(t, k) == same


def test_dropout_masks_differ(all_three):
    """Same seed, same rate, different masks: each framework has its own generator (all scale kept units by 1/(1-p))."""
    import keras
    import paddle
    import torch

    x = np.ones(4096, np.float32)
    torch.manual_seed(0)
    t = torch.nn.functional.dropout(torch.from_numpy(x), 0.5, training=True).numpy()
    paddle.seed(0)
    p = paddle.nn.functional.dropout(paddle.to_tensor(x), 0.5, training=True).numpy()
    k = keras.ops.convert_to_numpy(keras.layers.Dropout(0.5, seed=0)(x, training=True))
    for out in (t, p, k):
        assert set(np.unique(out)) == {0.0, 2.0}
    assert not np.array_equal(t, p) and not np.array_equal(t, k) and not np.array_equal(p, k)


def test_cross_entropy_conventions(all_three):
    """PyTorch's and Paddle's cross-entropy take logits; Keras' losses take probabilities unless from_logits=True."""
    import keras
    import paddle
    import torch

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 10)).astype(np.float32) * 3
    labels = rng.integers(0, 10, 4)
    shifted = logits - logits.max(axis=1, keepdims=True)
    expected = float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(4), labels]))
    t = float(torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))
    p = float(paddle.nn.functional.cross_entropy(paddle.to_tensor(logits), paddle.to_tensor(labels)))
    k_logits = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits))
    k_default = float(keras.losses.SparseCategoricalCrossentropy()(labels, logits))
    assert t == pytest.approx(expected, rel=1e-5) and p == pytest.approx(expected, rel=1e-5)
    assert k_logits == pytest.approx(expected, rel=1e-5)
    assert abs(k_default - expected) > 0.1  # logits read as probabilities


def test_default_initializers(all_three):
    """Fresh models differ.

    Conv kernels start U(+-1/sqrt(fan_in)) (PyTorch), Glorot-uniform (Keras), N(0, 2/fan_in) (Paddle)."""
    import keras
    import paddle
    import torch

    cin, cout, k = 64, 128, 3
    fan_in, fan_out = cin * k * k, cout * k * k
    t = torch.nn.Conv2d(cin, cout, k).weight.detach().numpy()
    kc = keras.layers.Conv2D(cout, k)
    kc.build((None, 8, 8, cin))
    kw = keras.ops.convert_to_numpy(kc.kernel)
    pw = paddle.nn.Conv2D(cin, cout, k).weight.numpy()
    for w, bound in ((t, 1 / np.sqrt(fan_in)), (kw, np.sqrt(6 / (fan_in + fan_out)))):  # uniform(-bound, bound)
        assert 0.99 * bound < np.abs(w).max() <= bound
        assert np.std(w) == pytest.approx(bound / np.sqrt(3), rel=0.02)
    assert np.std(pw) == pytest.approx(np.sqrt(2 / fan_in), rel=0.02)  # normal: no bound
    assert np.abs(pw).max() > 3 * np.sqrt(2 / fan_in)
