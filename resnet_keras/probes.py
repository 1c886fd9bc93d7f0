"""Intermediate outputs of a Keras model at the canonical probe points."""

from __future__ import annotations

import keras
import numpy as np

from resnet_core import names, spec

from .weights import config_of


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
    probe_model = keras.Model(model.inputs[0], [model.get_layer(n).output for n in points] + [model.outputs[0]])
    dropouts = [l for l in model.layers if isinstance(l, keras.layers.Dropout)]
    rates = [l.rate for l in dropouts]
    for l in dropouts:
        l.rate = 0.0
    try:
        outs = probe_model(names.nchw_to_nhwc(np.asarray(x, dtype=np.float32)), training=training)
    finally:
        for l, r in zip(dropouts, rates):
            l.rate = r
    result = {n: names.nhwc_to_nchw(keras.ops.convert_to_numpy(o)) for n, o in zip(points, outs[:-1])}
    result["output"] = keras.ops.convert_to_numpy(outs[-1])
    return result
