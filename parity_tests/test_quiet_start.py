"""The Python API starts quietly: TensorFlow's and Paddle's start-up lines never reach a user's stderr.

Before, the quiet settings lived only in ``run.sh``; ``resnet_core.runtime`` now sets the variables
(``ENVIRONMENT``) and filters the lines no variable reaches (``NOISE``), without overriding a
user's own setting. Each case runs in a fresh process with a clean environment, as a user's script.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from .helpers import require

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOISE = ("I0000", "absl::InitializeLog", "cpu_feature_guard", "oneDNN custom operations", "No ccache found")

SCRIPT = """
import sys
import numpy as np
for name in sys.argv[1:]:
    __import__(name)
import paddle
import resnet_keras, resnet_paddle
k = resnet_keras.minimodel()
k(np.zeros((1, 32, 32, 3), np.float32), training=False)
p = resnet_paddle.minimodel()
p.eval()
p(paddle.zeros([1, 3, 32, 32]))
print("ran", file=sys.stderr)
"""


def _run(code: str, *args: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GLOG_minloglevel")}
    base.update(PYTHONPATH=str(ROOT), **env)
    r = subprocess.run([sys.executable, "-c", code, *args], env=base, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stderr


@pytest.mark.parametrize("order", [("resnet_keras", "resnet_paddle"), ("resnet_paddle", "resnet_keras")])
def test_importing_and_running_both_is_quiet(order):
    require("keras")
    require("paddle")
    err = _run(SCRIPT, *order)
    assert err.strip().splitlines()[-1] == "ran", err
    assert not [line for line in err.splitlines() if any(n in line for n in NOISE)], err


def test_the_lines_are_there_without_the_filter():
    """Negative control: a plain ``import tensorflow`` prints them even at TF_CPP_MIN_LOG_LEVEL=3."""
    require("keras")
    err = _run("import tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    if "oneDNN custom operations are on" not in err:
        import importlib.metadata as md

        version = next((md.version(d) for d in ("tensorflow-cpu", "tensorflow") if _installed(d)), "?")
        pytest.skip(
            f"TensorFlow {version} prints no start-up line at TF_CPP_MIN_LOG_LEVEL=3 (2.21 does): nothing to filter"
        )
    assert "absl::InitializeLog" in err, err


def test_a_users_own_setting_wins():
    """TF_CPP_MIN_LOG_LEVEL=0 set by the user asks for TensorFlow's info lines: they are not filtered."""
    require("keras")
    err = _run("import resnet_keras", TF_CPP_MIN_LOG_LEVEL="0")
    assert "oneDNN custom operations are on" in err, err


def _installed(dist: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(dist)
    except md.PackageNotFoundError:
        return False
    return True
