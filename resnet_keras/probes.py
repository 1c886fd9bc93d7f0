"""Intermediate outputs of a Keras model at the canonical probe points."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import keras
import numpy as np

from resnet_core import names, spec

from .backends import ForwardFunction, forward_function
from .weights import config_of


@contextmanager
def dropout_off(model: keras.Model) -> Iterator[None]:
    """Dropout rate 0 inside the block: the frameworks draw different random masks."""
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    rates = [layer.rate for layer in dropouts]
    for layer in dropouts:
        layer.rate = 0.0
    try:
        yield
    finally:
        for layer, rate in zip(dropouts, rates):
            layer.rate = rate


def _plain(value: object) -> object:
    """``value`` if it is plain data (a number, a string, tuples of them); a function's name; else its type's name."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    return getattr(value, "__qualname__", type(value).__name__)


def _layer_settings(model: keras.Model) -> str:
    """Every layer's name, class, dtype policy, trainability and public settings (epsilon, padding, strides, rate...).

    Read from the layers' attributes, not ``get_config``: serializing a dtype policy imports TensorFlow (2.6 s)
    whenever it is installed, even in a process that runs Keras on JAX.
    """
    return repr(
        [
            (
                layer.name,
                type(layer).__qualname__,
                layer.dtype_policy.name,
                layer.trainable,
                sorted((k, _plain(v)) for k, v in vars(layer).items() if k[0] != "_"),
            )
            for layer in model.layers
        ]
    )


# (mode, the model's class, builder config and layer settings) -> forward function, shared by every model of
# that architecture: on JAX one compiled program per input shape, traced once instead of once per model.
_FUNCTIONS: OrderedDict[tuple, ForwardFunction] = OrderedDict()
_KEEP = 16
_LOCK = threading.Lock()


def _probe_run(
    model: keras.Model, cfg: spec.Config, points: list[str], training: bool
) -> tuple[keras.Model, ForwardFunction]:
    """The model that outputs the probe points (made once per model), and the forward function to run it with.

    The probe model holds ``model``'s own layers, so it sees any change made to them. A compiled program keeps the
    layer attributes it was traced with, so the function is looked up by every layer's settings: a model changed
    in place (a BN epsilon set by hand) gets another one, never a stale program.
    """
    if "_resnet_probe_model" not in model.__dict__:  # kept on the model: it goes when the model goes
        outputs = [model.get_layer(names.keras_layer(n)).output for n in points] + [model.outputs[0]]
        model.__dict__["_resnet_probe_model"] = keras.Model(model.inputs[0], outputs)
    key = (training, type(model).__qualname__, repr(cfg), _layer_settings(model))
    with _LOCK:
        if key not in _FUNCTIONS:
            _FUNCTIONS[key] = forward_function(training=training)
            while len(_FUNCTIONS) > _KEEP:
                _FUNCTIONS.popitem(last=False)
        _FUNCTIONS.move_to_end(key)
        return model.__dict__["_resnet_probe_model"], _FUNCTIONS[key]


def probe_outputs(model: keras.Model, x: np.ndarray, *, training: bool = False) -> dict[str, np.ndarray]:
    """Run ``model`` on NCHW ``x`` and return every probe's output (NCHW), plus ``"output"``.

    ``x`` is given in the canonical NCHW layout and transposed to NHWC here, so
    callers feed every framework the same array. With ``training=True``
    BatchNorm uses batch statistics (and updates its moving statistics);
    dropout is switched off so the frameworks can be compared.
    """
    cfg = config_of(model)
    spec.check_input_shape(cfg, x.shape, "NCHW")
    points = [p.name for p in spec.probes(cfg)]
    with dropout_off(model):
        probe_model, run = _probe_run(model, cfg, points, training)
        outs = run(probe_model, names.nchw_to_nhwc(np.asarray(x, dtype=np.float32)))
    result = {n: names.nhwc_to_nchw(keras.ops.convert_to_numpy(o)) for n, o in zip(points, outs[:-1])}
    result["output"] = keras.ops.convert_to_numpy(outs[-1])
    return result
