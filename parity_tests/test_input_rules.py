"""The one input rule, applied the same way in all three frameworks (``spec.check_input``).

* dtype: the input's dtype must equal the weights' (float32 unless the model was cast). Refused with
  expected-vs-received, never cast: before, PyTorch and Paddle failed deep inside a layer and Keras
  cast silently.
* An empty batch in training mode is refused before it reaches BatchNorm: before, Keras turned its
  moving statistics into NaN for good (PyTorch and Paddle failed in their own ways).
"""

from __future__ import annotations

import numpy as np
import pytest

from resnet_core import spec
from resnet_core.names import FRAMEWORKS
from resnet_core.weights import random_weights

from .helpers import require

pytestmark = pytest.mark.structure


def _net(fw: str, model: str = "minimodel", dtype: str = "float32"):
    mod = require(fw)
    net = mod.build(model)
    mod.import_weights(net, random_weights(spec.make_config(model), seed=7))
    return net if dtype == "float32" else mod.cast_model(net, dtype)


def _call(fw: str, net, x_nchw: np.ndarray, *, training: bool):
    """Run ``net`` on ``x`` (NCHW) the framework's plain way, in train or eval mode."""
    if fw == "keras":
        return net(np.transpose(x_nchw, (0, 2, 3, 1)), training=training)
    if fw == "torch":
        import torch

        net.train(training)
        return net(torch.from_numpy(x_nchw))
    import paddle

    net.train() if training else net.eval()
    return net(paddle.to_tensor(x_nchw))


def _x(dtype: str, batch: int = 2) -> np.ndarray:
    return (np.random.default_rng(0).random((batch, 3, 32, 32)) * 255).astype(dtype)


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.parametrize("dtype", ["float64", "int64", "uint8", "float16"])
def test_a_wrong_dtype_is_refused_the_same_way(fw, dtype):
    net = _net(fw)
    with pytest.raises(TypeError) as info:
        _call(fw, net, _x(dtype), training=False)
    msg = str(info.value)
    assert "minimodel expects float32 input" in msg and f"received {dtype}" in msg, msg
    _call(fw, net, _x("float32"), training=False)  # negative control: the weights' dtype passes


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_the_rule_follows_the_weights_dtype(fw):
    """A float64 copy of the model takes float64 and refuses float32: the rule is 'as the weights'."""
    net = _net(fw, dtype="float64")
    _call(fw, net, _x("float64"), training=False)
    with pytest.raises(TypeError, match=r"expects float64 input.*received float32"):
        _call(fw, net, _x("float32"), training=False)


def test_dtype_names_are_read_the_same_way():
    import numpy as np

    for d in ("float32", np.float32, np.dtype("float32"), "torch.float32", "<dtype: 'float32'>"):
        assert spec.dtype_name(d) == "float32", d


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.parametrize("model", ["minimodel", "resnet18"])
def test_an_empty_training_batch_is_refused(fw, model):
    """Before: Keras' BN moving statistics became NaN for good; now every framework refuses, stats untouched."""
    mod = require(fw)
    net = _net(fw, model)
    before = mod.export_weights(net)
    with pytest.raises(ValueError, match=r"refuses an empty batch in training mode \(input shape \(0, "):
        _call(fw, net, _x("float32", batch=0), training=True)
    after = mod.export_weights(net)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    out = _call(fw, net, _x("float32", batch=1), training=True)  # negative control: one sample trains
    assert int(out.shape[0]) == 1


def test_keras_fit_refuses_an_empty_batch():
    net = _net("keras")
    net.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="empty batch in training mode"):
        net.fit(np.zeros((0, 32, 32, 3), np.float32), np.zeros((0, 10), np.float32), verbose=0)
