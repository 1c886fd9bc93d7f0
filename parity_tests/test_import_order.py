"""TensorFlow/Keras and Paddle in one process, in every import order (see resnet_core.runtime).

Each order runs in a fresh subprocess, because the hazard is a segmentation fault of the whole
interpreter while libpaddle loads, and because a process cannot unload either framework.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_core import runtime

from .helpers import jax_worker_env

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 120  # each order takes about 4-6 s on a 2-core machine; this only guards against hangs

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("paddle") is None,
    reason="needs both tensorflow and paddle installed",
)


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "RESNET_PARITY_NO_DEEPBIND"}
    environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    for name, (value, _why) in runtime.ENVIRONMENT.items():  # the quiet settings, for the raw-import cases too
        environ.setdefault(name, value)
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=environ, capture_output=True, text=True, timeout=TIMEOUT_S
    )


def crashed(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode in (-signal.SIGSEGV, 128 + signal.SIGSEGV, -signal.SIGABRT, 128 + signal.SIGABRT)


def assert_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-4000:]}"
    )
    assert "IMPORT-ORDER-OK" in proc.stdout


OK = "; print('IMPORT-ORDER-OK')"


def test_module_imports_no_framework():
    proc = run(
        "import sys, resnet_core.runtime as m; "
        "loaded = [f for f in ('tensorflow', 'keras', 'paddle', 'torch') if f in sys.modules]; "
        "assert not loaded, loaded" + OK
    )
    assert_ok(proc)


def test_resnet_keras_then_resnet_paddle():
    assert_ok(run("import resnet_keras; import resnet_paddle" + OK))


def test_resnet_paddle_then_resnet_keras():
    assert_ok(run("import resnet_paddle; import resnet_keras" + OK))


def test_paddle_then_tensorflow():
    assert_ok(run("import paddle; import tensorflow" + OK))


def test_resnet_keras_then_plain_paddle():
    # prepare_keras() must protect a later plain `import paddle` too, not only resnet_paddle
    assert_ok(run("import resnet_keras; import paddle" + OK))


def test_tensorflow_then_resnet_paddle_works_or_refuses_clearly():
    proc = run("import tensorflow; import resnet_paddle" + OK)
    assert not crashed(proc), f"the process crashed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    if proc.returncode != 0:
        assert "ImportError" in proc.stderr and "TensorFlow" in proc.stderr, proc.stderr[-4000:]
    else:
        assert_ok(proc)


def test_tensorflow_then_resnet_paddle_both_compute():
    # not just importable: both runtimes (and Paddle's own protobuf) work side by side
    code = (
        "import numpy as np, tensorflow as tf; import resnet_paddle, paddle; from paddle.base import core\n"
        "x = np.random.rand(2, 3, 8, 8).astype('float32')\n"
        "w = np.random.rand(4, 3, 3, 3).astype('float32')\n"
        "p = paddle.nn.functional.conv2d(paddle.to_tensor(x), paddle.to_tensor(w)).numpy()\n"
        "t = tf.nn.conv2d(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), 1, 'VALID').numpy().transpose(0, 3, 1, 2)\n"
        "np.testing.assert_allclose(p, t, rtol=1e-4, atol=1e-4)\n"
        "pd = core.ProgramDesc(); b = pd.block(0); v = b.var(b'x'); v.set_shape([2, 3]); "
        "v.set_dtype(core.VarDesc.VarType.FP32)\n"
        "assert core.ProgramDesc(pd.serialize_to_string()).block(0).has_var(b'x')" + OK
    )
    assert_ok(run(code))


def test_tensorflow_then_resnet_paddle_refuses_without_fix():
    # with the RTLD_DEEPBIND fix switched off, the order is refused with a clear ImportError, never a crash
    proc = run("import tensorflow; import resnet_paddle" + OK, RESNET_PARITY_NO_DEEPBIND="1")
    assert not crashed(proc), f"the process crashed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stderr[-4000:]}"
    assert "ImportError" in proc.stderr or "PaddleAfterTensorFlowError" in proc.stderr, proc.stderr[-4000:]
    assert "TensorFlow was imported first" in proc.stderr, proc.stderr[-4000:]


def test_resnet_keras_then_resnet_paddle_without_fix():
    # fallback of prepare_keras() where RTLD_DEEPBIND is unavailable: it imports Paddle before TensorFlow
    assert_ok(
        run(
            "import resnet_keras; import resnet_paddle; import sys; "
            "assert list(sys.modules).index('paddle') < list(sys.modules).index('tensorflow')" + OK,
            RESNET_PARITY_NO_DEEPBIND="1",
        )
    )


def test_prepare_keras_fixes_plain_imports():
    assert_ok(
        run("from resnet_core.runtime import prepare_keras; prepare_keras(); import tensorflow; import paddle" + OK)
    )


def test_raw_tensorflow_then_paddle_still_segfaults():
    """Documents the hazard that resnet_core.runtime works around.

    Without prepare_keras()/prepare_paddle(), libpaddle binds to TensorFlow's (global, newer)
    protobuf and crashes in RepeatedPtrFieldBase::AddOutOfLineHelper. If this test starts failing
    because the process exits 0, TensorFlow/Paddle fixed it upstream: the work-around can go.
    """
    proc = run("import tensorflow; import paddle" + OK)
    assert proc.returncode == -signal.SIGSEGV, (
        f"expected the known SIGSEGV, got exit {proc.returncode}\n{proc.stderr[-2000:]}"
    )


# Keras on JAX and on PyTorch (the parity matrix's worker processes, or a user's KERAS_BACKEND) beside Paddle
# and PyTorch: the packages in either order, each computing, not only importing.
_COMPUTE = {
    m: f"import numpy as np, {m} as m; m.probe_outputs(m.build('minimodel'), np.zeros((1, 3, 32, 32), 'f'))"
    for m in ("resnet_keras", "resnet_paddle", "resnet_torch")
}


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize(
    "order", [("resnet_keras", "resnet_paddle", "resnet_torch"), ("resnet_paddle", "resnet_torch", "resnet_keras")]
)
def test_keras_backends_beside_paddle_and_torch(backend, order):
    for lib in (backend, "torch"):
        if importlib.util.find_spec(lib) is None:
            pytest.skip(f"needs {lib} installed")
    code = "; ".join(_COMPUTE[m] for m in order) + "; import keras; assert keras.backend.backend() == " + repr(backend)
    # the JAX settings of the keras-jax worker (x64, the compilation cache), as the matrix runs it
    jax_env = jax_worker_env()
    assert_ok(run(code + OK, KERAS_BACKEND=backend, **jax_env))
