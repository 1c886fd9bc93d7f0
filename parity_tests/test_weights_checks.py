"""Precise errors at the edges of weight handling: ``check_weights`` (the one strict validation),
the readers and ``inspect``.

Before: ``inspect`` listed bfloat16 tensors as float32, a folder was "no such file",
``import_weights(model, None)`` gave a bare TypeError, a tensor that requires grad gave torch's
RuntimeError, and a negative ``running_var`` was accepted.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from resnet_core import cli, spec
from resnet_core.weights import WeightsError, check_weights, random_weights

from .helpers import require

pytestmark = pytest.mark.porting
CFG = spec.make_config("minimodel")


@pytest.mark.parametrize("bad", [None, [1, 2], "weights.safetensors"])
def test_weights_that_are_not_a_mapping(bad):
    with pytest.raises(TypeError, match=r"expected the weights as a mapping of canonical name -> array") as info:
        check_weights(CFG, bad)
    assert f"received {type(bad).__name__}" in str(info.value)


def test_import_weights_with_none_names_the_problem():
    rt = require("torch")
    with pytest.raises(TypeError, match="received NoneType"):
        rt.import_weights(rt.build("minimodel"), None)


def test_tensors_that_require_grad_are_accepted():
    rt = require("torch")
    import torch

    w = random_weights(CFG, seed=4)
    net = rt.build("minimodel")
    rt.import_weights(net, {k: torch.tensor(v, requires_grad=True) for k, v in w.items()})
    got = rt.export_weights(net)
    assert all(np.array_equal(got[k], w[k]) for k in w)


def test_a_tensor_numpy_cannot_read_is_named():
    require("torch")
    import torch

    w = dict(random_weights(CFG, seed=4))
    w["head.fc.bias"] = torch.tensor(w["head.fc.bias"]).bfloat16()
    with pytest.raises(WeightsError, match=r"head\.fc\.bias: expected an array, received Tensor"):
        check_weights(CFG, w)


def test_negative_running_variance_is_refused():
    w = random_weights(CFG, seed=4)
    w["unit3.bn2.running_var"][1] = -0.25
    with pytest.raises(
        WeightsError, match=r"negative running variance \(expected >= 0\) in 1: unit3\.bn2\.running_var"
    ):
        check_weights(CFG, w)
    w["unit3.bn2.running_var"][1] = 0.0  # negative control: zero is a valid variance (BN adds epsilon)
    check_weights(CFG, w)


def _bf16_files(tmp_path):
    """A .pt (torch.save) and a .safetensors (the reference library) with bfloat16 tensors, real writers."""
    require("torch")
    import torch

    cfg = spec.make_config("resnet18")
    sd = {k: torch.from_numpy(v) for k, v in random_weights(cfg, seed=2).items()}
    sd["fc.weight"] = sd["fc.weight"].bfloat16()
    pt = tmp_path / "bf16.pt"
    torch.save(sd, pt)
    files = [pt]
    try:
        from safetensors.torch import save_file
    except ImportError:
        return files
    st = tmp_path / "bf16.safetensors"
    save_file(sd, str(st))
    return [*files, st]


def test_inspect_shows_bfloat16_as_stored(tmp_path, capsys):
    for path in _bf16_files(tmp_path):
        rc = cli.main(["inspect", str(path)])
        out = capsys.readouterr().out
        assert rc == 0, out
        assert re.search(r"fc\.weight\s+\(10, 512\)\s+bfloat16", out), out
        assert re.search(r"fc\.bias\s+\(10,\)\s+float32", out), out  # negative control: the others as stored


@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_a_folder_is_not_a_file(tmp_path, capsys, command):
    folder = tmp_path / "weights.safetensors"
    folder.mkdir()
    argv = [command, str(folder)] + ([str(tmp_path / "out.safetensors")] if command == "convert" else [])
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{folder} is a directory; expected a weights file" in err and "no such file" not in err
