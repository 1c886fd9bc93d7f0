"""README.md: the strict plain-Paddle loading snippet, run as written.

The plain ``model.set_state_dict(paddle.load(path))`` only warns when a checkpoint has another class
count and loads the rest (a half-loaded model); the strict snippet refuses and loads nothing.
"""

from __future__ import annotations

import pathlib
import re
import warnings

import numpy as np
import pytest

from .helpers import needs_repository, require

pytestmark = needs_repository("README.md's Paddle snippet")

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "README.md"


def _snippet() -> str:
    text = DOC.read_text()
    m = re.search(r"<!-- strict-paddle-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert m, "snippet markers not found"
    return m.group(1)


def _checkpoint(tmp_path, num_classes: int) -> pathlib.Path:
    rp = require("paddle")
    import paddle

    src = rp.resnet18(num_classes=num_classes)
    path = tmp_path / "resnet18_cifar.pdparams"
    paddle.save(src.state_dict(), str(path))
    return path


def _run(code: str, folder: pathlib.Path, monkeypatch) -> dict:
    monkeypatch.chdir(folder)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    return scope


def test_the_plain_form_half_loads(tmp_path, monkeypatch):
    """Why the snippet changes: with 100 classes in the file Paddle warns and loads all but fc."""
    rp = require("paddle")
    import paddle

    _checkpoint(tmp_path, 100)
    model = rp.resnet18(num_classes=10)
    before = model.state_dict()["conv1.weight"].numpy().copy()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        model.set_state_dict(paddle.load(str(tmp_path / "resnet18_cifar.pdparams")))
    assert not np.array_equal(model.state_dict()["conv1.weight"].numpy(), before)  # loaded: half a model


def test_the_strict_snippet_refuses_another_class_count(tmp_path, monkeypatch):
    _checkpoint(tmp_path, 100)
    with pytest.raises(ValueError, match=r"checkpoint does not fit the model: \['fc.bias', 'fc.weight'\]"):
        _run(_snippet(), tmp_path, monkeypatch)


def test_the_strict_snippet_loads_a_fitting_checkpoint(tmp_path, monkeypatch):
    """Negative control: the same snippet loads a 10-class checkpoint exactly."""
    rp = require("paddle")
    import paddle

    path = _checkpoint(tmp_path, 10)
    model = _run(_snippet(), tmp_path, monkeypatch)["model"]
    want = paddle.load(str(path))
    got = model.state_dict()
    assert all(np.array_equal(got[k].numpy(), want[k].numpy()) for k in want)
    assert rp.count_params(model).trainable > 0
