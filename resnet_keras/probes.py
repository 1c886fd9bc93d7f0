"""Intermediate outputs of a Keras model at the canonical probe points."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras
import numpy as np

from resnet_core import names, spec

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
    outputs = [model.get_layer(names.keras_layer(n)).output for n in points] + [model.outputs[0]]
    probe_model = keras.Model(model.inputs[0], outputs)
    with dropout_off(model):
        outs = probe_model(names.nchw_to_nhwc(np.asarray(x, dtype=np.float32)), training=training)
    result = {n: names.nhwc_to_nchw(keras.ops.convert_to_numpy(o)) for n, o in zip(points, outs[:-1])}
    result["output"] = keras.ops.convert_to_numpy(outs[-1])
    return result
