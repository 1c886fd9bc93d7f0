"""A user's own Keras settings do not change what this project runs or builds.

Keras reads process-wide settings at import: the backend (``KERAS_BACKEND``, else ``"backend"`` in
``$KERAS_HOME/keras.json``), the default layout (``"image_data_format"``) and dtype (``"floatx"``). Before:
- a user's ``KERAS_BACKEND=jax`` made the implementation ``keras`` of ``report`` and of this suite a second Keras
  on JAX. Every row and test passed, and none ran Keras on TensorFlow;
- ``"image_data_format": "channels_first"`` made the MiniModel fail to build ("Computed output size would be zero
  or negative"), and would make every spatial layer read its input transposed;
- ``"floatx": "float64"`` made every layer float64, and the float32 levels compared a float64 Keras model.

Now the command line and the suite run their own Keras on TensorFlow (``runtime.own_keras_backend``, where
TensorFlow is installed) and say what they set aside, a worker on this process' own backend is not run twice,
every spatial layer of the models says ``channels_last``, and ``build`` makes float32 models.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from resnet_core import cli, frameworks, runtime, spec
from resnet_core.weights import random_input, random_weights

from .helpers import child_pythonpath, require


def _child(code: str, **env: str) -> list:
    """Runs ``code`` in a fresh Python (no framework imported yet); returns the JSON of its last stdout line."""
    base = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "KERAS_HOME")}
    full = {**base, "PYTHONPATH": child_pythonpath(), **env}
    r = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


OWN_THEN_IMPORT = """
import json, os
from resnet_core import runtime
set_aside = runtime.own_keras_backend()
import keras
print(json.dumps([set_aside, keras.backend.backend(), os.environ.get("KERAS_BACKEND")]))
"""


@pytest.mark.parametrize("where", ["KERAS_BACKEND", "keras.json"])
def test_a_users_keras_backend_is_set_aside_where_tensorflow_is_installed(where, tmp_path):
    """Keras then runs on TensorFlow, from either place the user can name another backend. Without the call, Keras
    would import on JAX (or fail to, where JAX is missing): the assertion fails either way."""
    require("keras")  # Keras on TensorFlow
    if where == "KERAS_BACKEND":
        got = _child(OWN_THEN_IMPORT, KERAS_BACKEND="jax", KERAS_HOME=str(tmp_path))
        assert got == ["jax", "tensorflow", "tensorflow"]
    else:  # Keras reads keras.json; only the environment variable can be reported as set aside
        (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
        got = _child(OWN_THEN_IMPORT, KERAS_HOME=str(tmp_path))
        assert got == [None, "tensorflow", "tensorflow"]


def test_without_tensorflow_a_users_backend_stays():
    """A Keras-on-JAX user without TensorFlow keeps Keras on JAX (it is the only Keras that can run there)."""
    code = """
import importlib.util, json, os
real = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name == "tensorflow" else real(name, *a)
from resnet_core import runtime
print(json.dumps([runtime.own_keras_backend(), os.environ["KERAS_BACKEND"]]))
"""
    assert _child(code, KERAS_BACKEND="jax") == [None, "jax"]


def test_once_keras_is_imported_nothing_is_changed(monkeypatch):
    """Its backend is fixed then: the environment is left as it was, and the label says which backend runs."""
    require("keras")
    assert "keras" in sys.modules
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert runtime.own_keras_backend() is None
    assert os.environ["KERAS_BACKEND"] == "jax"
    assert frameworks.label("keras") == "keras/tensorflow"  # Keras' own answer, not the variable


def test_the_suite_sets_it_aside_before_its_first_framework():
    """``helpers`` (imported by conftest before any test) does it, and keeps what it set aside for the header."""
    require("keras")
    code = (
        "import json, os, parity_tests.helpers as h; "
        "print(json.dumps([h.KERAS_BACKEND_SET_ASIDE, os.environ['KERAS_BACKEND']]))"
    )
    assert _child(code, KERAS_BACKEND="torch") == ["torch", "tensorflow"]


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("jax", "Keras on jax runs in a worker process (`keras-jax`)"),
        ("torch", "Keras on torch runs in a worker process (`keras-torch`)"),
        ("numpy", "'numpy' is not a Keras backend this project runs (tensorflow, jax, torch)"),
    ],
)
def test_the_command_line_says_what_it_set_aside(backend, expected, monkeypatch, capsys, tmp_path):
    """One line on stderr before the command's own output (here ``inspect`` of a missing file, which fails)."""
    monkeypatch.setattr(runtime, "own_keras_backend", lambda: backend)
    assert cli.main(["inspect", str(tmp_path / "missing.safetensors")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        f"resnet-parity: KERAS_BACKEND={backend} set aside: Keras runs on tensorflow in this process (`keras`); "
        + expected
    )
    assert err[1].startswith("resnet-parity inspect: error:"), err


def test_a_worker_on_this_process_backend_is_not_run_twice(monkeypatch):
    """Where this process' own Keras runs on JAX (no TensorFlow here, or Keras imported before), ``keras`` is Keras
    on JAX and the ``keras-jax`` worker would repeat its rows: it is left out, saying why; ``keras-torch`` is not."""
    monkeypatch.setattr(frameworks, "keras_backend", lambda: "jax")
    reason = frameworks.missing_reason("keras-jax")
    if all(importlib.util.find_spec(m) is not None for m in ("keras", "jax")):
        assert reason == "keras/jax is this process' own Keras (KERAS_BACKEND=jax): the implementation `keras` runs it"
    assert reason is not None
    assert "keras-jax" not in frameworks.available(implementations=True)
    assert "own Keras" not in (frameworks.missing_reason("keras-torch") or "")


@pytest.mark.parametrize(("model_id", "hw"), [("minimodel", (32, 32)), ("resnet18-imagenet", (64, 48))])
def test_the_models_ignore_a_users_image_data_format(model_id, hw):
    """Built while Keras' default layout is ``channels_first`` (what keras.json can set), a model is the same model:
    every probe bitwise equal to a default build's, on the same weights. Without ``data_format`` on its layers the
    MiniModel fails to build, and ResNet-18's convolutions read channels as rows."""
    import keras

    rk = require("keras")
    v = spec.VARIANTS[model_id]
    saved = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        odd = rk.build(v.model, initialize=False, **v.kwargs)
    finally:
        keras.config.set_image_data_format(saved)
    plain = rk.build(v.model, initialize=False, **v.kwargs)
    weights = random_weights(v.config, 1)
    x = random_input(v.config, 2, *hw, seed=2)
    outputs = []
    for net in (odd, plain):
        rk.import_weights(net, weights)
        outputs.append(rk.probe_outputs(net, x))
    assert list(outputs[0]) == list(outputs[1])
    unequal = [k for k in outputs[1] if not np.array_equal(outputs[0][k], outputs[1][k])]
    assert not unequal, unequal
    layouts = {getattr(layer, "data_format", "channels_last") for layer in odd.layers}
    assert layouts == {"channels_last"}, layouts


def test_a_users_keras_json_changes_no_model_it_builds(tmp_path):
    """keras.json's ``floatx`` and ``image_data_format``, read when Keras is imported (as a user's file is): ``build``
    still makes the float32, channels-last model. Before, ``"floatx": "float64"`` made every layer float64 (a float32
    report then compared a float64 Keras model) and ``"channels_first"`` broke the MiniModel's build."""
    require("keras")
    (tmp_path / "keras.json").write_text(json.dumps({"floatx": "float64", "image_data_format": "channels_first"}))
    code = """
import json
import numpy as np
import keras, resnet_keras as rk
net = rk.build("minimodel", initialize=False)
out = rk.probe_outputs(net, np.zeros((1, 3, 32, 32), np.float32))
print(json.dumps([
    keras.config.floatx(), keras.config.image_data_format(),
    sorted({str(w.dtype) for w in net.weights}), sorted({str(v.dtype) for v in out.values()}),
    sorted({layer.data_format for layer in net.layers if hasattr(layer, "data_format")}),
]))
"""
    got = _child(code, KERAS_HOME=str(tmp_path))
    assert got == ["float64", "channels_first", ["float32"], ["float32"], ["channels_last"]]
