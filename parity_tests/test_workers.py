"""Keras on every backend: the worker implementations of the parity matrix, files across backends, devices.

The parity levels of Keras on JAX and on PyTorch run in ``test_forward.py`` and ``test_training.py`` (the
``direction`` fixture); this module checks what those levels rely on: a worker process behaves as the package
itself (results, exceptions, handles, a death named), a ``.weights.h5``/``.keras`` written on one backend loads
on the others (also files of the old dotted layer names), the TF32 switch of each backend turns and is
restored, float64 is refused where Keras would compute it in float32, and the GPU levels are skips that say
why on a machine without a GPU.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import os
import signal
import textwrap

import numpy as np
import pytest

from resnet_core import frameworks, remote, spec
from resnet_core.parity import Matrix
from resnet_core.weights import WeightsError, random_weights

from .helpers import child_pythonpath, jax_worker_env, require, selected_frameworks
from .test_keras_backends import LIBRARY, run_snippet

WORKERS = list(frameworks.WORKERS)


def child_env() -> dict[str, str]:
    """A Keras child's environment: the keras-jax worker's JAX settings (x64, the compilation cache) and this
    checkout first on ``PYTHONPATH``."""
    return {
        **jax_worker_env(),
        "PYTHONPATH": child_pythonpath(),
    }


def worker(impl: str, config: pytest.Config):
    if impl not in selected_frameworks(config):
        pytest.skip(f"needs {impl}, which --framework left out")
    if reason := frameworks.missing_reason(impl):
        pytest.skip(reason)
    return frameworks.get(impl)


@pytest.mark.parametrize("impl", WORKERS)
def test_a_worker_is_the_package_in_another_process(impl, pytestconfig):
    pkg = worker(impl, pytestconfig)
    assert frameworks.WORKERS[impl].backend == pkg.BACKEND
    assert frameworks.label(impl) == f"keras/{pkg.BACKEND}" and frameworks.family(impl) == "keras"
    cfg = spec.variant("resnet18-cifar").config
    net = pkg.build("resnet18", stem="cifar", initialize=False)
    assert net.config == cfg and pkg.config_of(net) == cfg
    w = random_weights(cfg, seed=5)
    pkg.import_weights(net, w)
    back = pkg.export_weights(net)
    assert list(back) == list(w)
    assert all(np.array_equal(back[k], w[k]) for k in w)  # float32 in, the same bits out
    counts = pkg.count_params(net)
    assert counts == spec.counts(cfg)
    # an exception in the worker is raised here with its own type and message
    with pytest.raises(WeightsError, match=r"missing 101: bn1\.weight"):
        pkg.import_weights(net, {"conv1.weight": w["conv1.weight"]})
    assert all(np.array_equal(pkg.export_weights(net)[k], w[k]) for k in w)  # all-or-nothing held there too


def test_a_dead_worker_is_named(pytestconfig):
    impl = "keras-torch" if frameworks.missing_reason("keras-torch") is None else "keras-jax"
    worker(impl, pytestconfig)
    w = frameworks.WORKERS[impl]
    pkg = remote.package("test-dead-worker", w.framework, frameworks.worker_env(w))
    try:
        net = pkg.build("minimodel")
        os.kill(pkg.pid, signal.SIGKILL)
        with pytest.raises(remote.RemoteError, match=r"test-dead-worker worker process \(pid \d+\) died"):
            pkg.export_weights(net)
    finally:
        remote.stop("test-dead-worker")


@pytest.mark.parametrize("impl", ["keras", *WORKERS])
def test_tf32_switch_turns_and_is_restored(impl, pytestconfig):
    pkg = require("keras") if impl == "keras" else worker(impl, pytestconfig)
    before = pkg.tf32_enabled()
    with pkg.tf32(True):
        assert pkg.tf32_enabled() is True
        with pkg.tf32(False):
            assert pkg.tf32_enabled() is False
        assert pkg.tf32_enabled() is True
    assert pkg.tf32_enabled() == before


@pytest.mark.gpu
@pytest.mark.parametrize("impl", WORKERS)
def test_gpu_levels_without_a_gpu_are_skips_that_say_why(impl, pytestconfig):
    pkg = worker(impl, pytestconfig)
    reason = pkg.gpu_unavailable_reason()
    if reason is None:
        pytest.skip(f"{frameworks.label(impl)} sees a GPU here: the GPU levels run in test_forward/test_training")
    assert "GPU" in reason
    net = pkg.build("minimodel", initialize=False)  # its values are never read
    with pytest.raises(RuntimeError, match="GPU"), pkg.on_device(net, "gpu"):
        pass
    rows = Matrix("gpu").level("eval", "minimodel", (impl, "torch"))
    assert len(rows) == 1 and rows[0].status == "skip"
    assert rows[0].skipped == f"{frameworks.label(impl)}: {reason}"


# ----------------------------------------------------------------------------- files across backends
# One child per backend writes its files, waits until every backend's files are written (a marker file per
# written file; the test writes ABORT if a child failed), then reads them all: one Keras import per backend
# instead of a writer and a reader each (6 imports -> 3).
CROSS = textwrap.dedent(
    """
    import json, os, sys, time
    import keras, numpy as np
    import resnet_core.names, resnet_keras.models
    import resnet_keras as rk
    from resnet_core import porting, spec
    from resnet_core.weights import random_weights
    jobs = json.loads(sys.argv[1])
    cfg = spec.variant("resnet18-cifar").config
    names = (resnet_core.names.keras_layer, resnet_keras.models._k)
    for item in jobs["mine"]:
        path = item["path"]
        if item["dotted"] == "1":  # the layer names before they lost their dots (TensorFlow accepts dots)
            resnet_core.names.keras_layer = resnet_keras.models._k = lambda name: name
        net = rk.build("resnet18", stem="cifar", initialize=False)
        rk.import_weights(net, random_weights(cfg, item["seed"]))
        assert (item["dotted"] == "1") == ("layer1.0.bn1" in [layer.name for layer in net.layers])
        net.save_weights(path + ".weights.h5")
        net.save(path + ".keras")
        resnet_core.names.keras_layer, resnet_keras.models._k = names
        open(path + ".written", "w").close()
    deadline = time.monotonic() + 240
    while missing := [i["path"] for i in jobs["all"] if not os.path.exists(i["path"] + ".written")]:
        if os.path.exists(jobs["abort"]) or time.monotonic() > deadline:
            sys.exit(f"not written by the other backends: {missing}")
        time.sleep(0.05)
    native = rk.build("resnet18", stem="cifar", initialize=False)  # every file loads into it, replacing all weights
    got = {}
    for item in jobs["all"]:
        want = random_weights(cfg, item["seed"])
        def err(net):
            w = rk.export_weights(net)
            return max(float(np.max(np.abs(w[k] - want[k]))) for k in want)
        native.load_weights(item["path"] + ".weights.h5")  # Keras' own loader
        e = err(native)
        archive = keras.saving.load_model(item["path"] + ".keras")
        ours = rk.load(item["path"] + ".weights.h5")  # this project's reader: names, scheme, config
        scheme = porting.read(item["path"] + ".weights.h5").scheme
        got[item["path"]] = {"native": e, "archive": err(archive), "ours": err(ours), "scheme": scheme}
    print(json.dumps({"backend": keras.backend.backend(), "got": got}))
    """
)


def test_weights_files_cross_every_backend(tmp_path, pytestconfig):
    """A ``.weights.h5`` and a ``.keras`` written on each backend load on every backend, bit-exact.

    Read three ways: Keras' ``load_weights`` into a model (each file replaces every weight of the one before,
    so a weight the file lacks keeps a wrong value and shows), ``keras.saving.load_model`` of the archive,
    and ``resnet_keras.load`` (this project's reader, which names the scheme). Files written with the
    old dotted layer names (TensorFlow only: the torch backend refuses dots) load everywhere too, their
    scheme ``keras-dotted``.
    """
    if "keras" not in selected_frameworks(pytestconfig):
        pytest.skip("needs keras, which --framework left out")
    present = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(LIBRARY[b]) is not None]
    if len(present) < 2:
        pytest.skip(f"needs two Keras backends; only {present} installed")
    env = child_env()
    seeds = {"tensorflow": 1, "jax": 2, "torch": 3}
    files = [{"backend": b, "path": str(tmp_path / b), "seed": seeds[b], "dotted": "0"} for b in present]
    if "tensorflow" in present:
        files.append({"backend": "tensorflow", "path": str(tmp_path / "dotted"), "seed": 4, "dotted": "1"})
    abort = tmp_path / "ABORT"

    def run(backend):
        jobs = {"mine": [f for f in files if f["backend"] == backend], "all": files, "abort": str(abort)}
        return run_snippet(backend, CROSS.replace("json.loads(sys.argv[1])", f"json.loads({json.dumps(jobs)!r})"), env)

    with concurrent.futures.ThreadPoolExecutor(len(present)) as pool:  # all at once: each waits for the others
        futures = {b: pool.submit(run, b) for b in present}
        done, _ = concurrent.futures.wait(futures.values(), return_when=concurrent.futures.FIRST_EXCEPTION)
        if failed := [f for f in done if f.exception()]:
            abort.touch()  # the others stop waiting for files that will not come
            concurrent.futures.wait(futures.values())
            raise failed[0].exception()  # the first failure, not the waits it ended
        results = {b: f.result() for b, f in futures.items()}
    for backend, res in results.items():
        assert res["backend"] == backend
        for item in files:
            got = res["got"][item["path"]]
            assert got["scheme"] == ("keras-dotted" if item["dotted"] == "1" else "keras"), (backend, item, got)
            for how in ("native", "archive", "ours"):
                assert got[how] == 0.0, f"{item['path']} read on {backend} via {how}: max error {got[how]}"


# ----------------------------------------------------------------------------- float64
FLOAT64 = textwrap.dedent(
    """
    import json
    import numpy as np, keras
    import resnet_keras as rk
    from resnet_keras import backends
    net = rk.build("minimodel", initialize=False)  # its kernels are never read
    out = {}
    try:
        rk.cast_model(net, "float64")
        out["refused"] = None
    except RuntimeError as e:
        out["refused"] = str(e)
    backends.keep_float64()
    net64 = rk.cast_model(net, "float64")
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 32))
    bn = net64.get_layer("unit1_bn1")
    y = keras.ops.convert_to_numpy(bn(x, training=True))
    ref = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + bn.epsilon) * keras.ops.convert_to_numpy(bn.gamma)
    ref = ref + keras.ops.convert_to_numpy(bn.beta)
    out["dtype"] = str(y.dtype)
    out["bn_error"] = float(np.max(np.abs(y - ref)))
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_float64_is_refused_until_keras_keeps_it(backend, pytestconfig):
    """Keras maps float64 to float32 in its promotion outside TensorFlow: cast_model says so instead of
    returning a "float64" model whose BatchNormalization computes in float32; after keep_float64() a BN
    in training mode is float64-exact (numpy reference)."""
    if "keras" not in selected_frameworks(pytestconfig):
        pytest.skip("needs keras, which --framework left out")
    got = run_snippet(backend, FLOAT64, child_env())
    assert got["refused"] and "keep_float64()" in got["refused"] and "float32" in got["refused"]
    assert got["dtype"] == "float64"
    assert got["bn_error"] < 1e-12  # float32 arithmetic would leave ~1e-7


COMPILED_FORWARD = textwrap.dedent(
    """
    import json
    import logging
    import sys

    import jax
    import numpy as np
    import resnet_keras as rk
    from resnet_core import names, spec
    from resnet_core.parity import compare
    from resnet_core.parity.settings import FORWARD_TOL, TRAIN_FORWARD_TOL
    from resnet_core.weights import random_input, random_weights

    v = spec.variant("minimodel")  # BN before every conv, and a dropout the probes switch off
    w = random_weights(v.config, seed=3)  # random BN statistics too
    x = random_input(v.config, 4, *v.reference_size, seed=1)
    layer = names.keras_layer("unit1.bn1")
    traces = []  # one entry per jax.jit trace of a probe program, from JAX's own compile log


    class Traces(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if "tracing" in message and "<lambda>" in message:
                traces.append(message)


    logging.getLogger("jax").addHandler(Traces())
    jax.config.update("jax_log_compiles", True)


    def built(epsilon=None):
        net = rk.build(v.model, initialize=False, **v.kwargs)
        rk.import_weights(net, w)
        if epsilon is not None:
            net.get_layer(layer).epsilon = epsilon
        return net


    def same(a, b):
        return [k for k in a if not np.array_equal(a[k], b[k])] == []


    out = {}
    net = built()
    first = rk.probe_outputs(net, x)
    out["first_traces"] = len(traces)
    out["repeat_bitwise"] = same(first, rk.probe_outputs(net, x))
    out["other_model_bitwise"] = same(first, rk.probe_outputs(built(), x))  # another model, the same weights
    out["traces_after_reuse"] = len(traces)
    with jax.disable_jit():  # the same calls, op by op
        eager = rk.probe_outputs(built(), x)
    out["eval_vs_eager"] = compare.compare_probes(v.config, eager, first, tol=FORWARD_TOL).passed
    net.get_layer(layer).epsilon = 0.5  # in place, after the program was compiled
    changed = rk.probe_outputs(net, x)
    out["traces_after_change"] = len(traces)
    out["change_seen"] = float(np.max(np.abs(changed["unit1.bn1"] - first["unit1.bn1"])))
    out["change_as_fresh"] = same(changed, rk.probe_outputs(built(0.5), x))
    trained, reference = built(), built()
    got = rk.probe_outputs(trained, x, training=True)
    with jax.disable_jit():
        want = rk.probe_outputs(reference, x, training=True)
    out["train_vs_eager"] = compare.compare_probes(v.config, want, got, tol=TRAIN_FORWARD_TOL).passed


    def statistics(net):  # BN's moving mean and variance (the dropout's seed state has a per-model name)
        return {v.path: v.numpy() for v in net.non_trainable_variables if "/moving_" in v.path}


    untouched, moved, ref = statistics(built()), statistics(trained), statistics(reference)
    out["statistics"] = len(moved)
    out["statistics_moved"] = all(np.any(moved[k] != untouched[k]) for k in moved)
    out["statistics_vs_eager"] = compare.compare_tensors(ref, moved, tol=TRAIN_FORWARD_TOL).passed
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    print(json.dumps(out))
    """
)


def test_keras_on_jax_probes_with_one_compiled_program(pytestconfig):
    """On JAX, ``probe_outputs`` runs one ``jax.jit``-compiled ``stateless_call`` per architecture and mode, shared by
    every model of it, instead of compiling every op on its own (the first report on a fresh machine was mostly
    that). Checked here, with JAX's own log of its traces: a repeated call, and a call on another model of the same
    architecture, reuse the program untraced and repeat its bits; eval and train outputs agree with the same calls
    run op by op (``jax.disable_jit``) within the parity tolerances (XLA fuses the compiled program, so the
    rounding differs); train mode leaves BN's moving statistics as the op-by-op call does; and a layer changed in
    place after compiling (a BN epsilon, as ``test_broken_port`` does) is seen, bit for bit as a model built with
    it; and none of it imports TensorFlow (Keras' ``get_config`` would, to serialize a dtype policy). TensorFlow and
    PyTorch call the model eagerly, reading every attribute at every call."""
    if "keras" not in selected_frameworks(pytestconfig):
        pytest.skip("needs keras, which --framework left out")
    got = run_snippet("jax", COMPILED_FORWARD, child_env())
    assert got["first_traces"] == 1 and got["traces_after_reuse"] == 1
    assert got["repeat_bitwise"] and got["other_model_bitwise"]
    assert got["traces_after_change"] == 2  # traced again with the new epsilon
    assert got["eval_vs_eager"] and got["train_vs_eager"]
    assert got["change_seen"] > 1e-3 and got["change_as_fresh"]
    assert got["statistics"] > 0 and got["statistics_moved"] and got["statistics_vs_eager"]
    assert not got["tensorflow_imported"]
