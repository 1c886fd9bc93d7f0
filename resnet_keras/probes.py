"""Intermediate outputs of a Keras model at the canonical probe points."""

from __future__ import annotations

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
    """Every layer's public settings (epsilon, padding, strides, rate, ...) and trainability, as text.

    Read from the layers' attributes, not ``get_config``: serializing a dtype policy imports TensorFlow (2.6 s)
    whenever it is installed, even in a process that runs Keras on JAX.
    """
    return repr(
        [
            (layer.name, layer.trainable, sorted((k, _plain(v)) for k, v in vars(layer).items() if k[0] != "_"))
            for layer in model.layers
        ]
    )


def _probe_function(model: keras.Model, points: list[str], training: bool) -> ForwardFunction:
    """The forward pass to the probe points, made once per model, mode and layer settings.

    On JAX it is a compiled program (compiling per call would cost more than the op-by-op run it replaces),
    and a compiled program keeps the attributes it was traced with, so a layer changed in place since (a BN
    epsilon set by hand) gets a new one. Kept on the model itself, one per mode, so it goes when the model goes.
    """
    key = (tuple(points), _layer_settings(model))
    cache = model.__dict__.setdefault("_resnet_probe_functions", {})
    if training not in cache or cache[training][0] != key:
        outputs = [model.get_layer(names.keras_layer(n)).output for n in points] + [model.outputs[0]]
        cache[training] = (key, forward_function(keras.Model(model.inputs[0], outputs), training=training))
    return cache[training][1]


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
        run = _probe_function(model, points, training)
        outs = run(names.nchw_to_nhwc(np.asarray(x, dtype=np.float32)))
    result = {n: names.nhwc_to_nchw(keras.ops.convert_to_numpy(o)) for n, o in zip(points, outs[:-1])}
    result["output"] = keras.ops.convert_to_numpy(outs[-1])
    return result
