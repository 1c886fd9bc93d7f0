"""``paddle.jit.save`` exports, read without running their program (``resnet_core/porting/paddle_inference.py``).

The exports are written by the real ``paddle.jit.save`` (paddlepaddle 3.3.1: the PIR ``.json``
program, its default; and, in a child process with ``FLAGS_enable_pir_api=0``, the legacy
``.pdmodel`` + ``.pdiparams.info``) from, in eval mode:

* this project's Paddle ResNet-18 (ImageNet and CIFAR stems) and MiniModel, seeded random weights;
* ``paddle.vision.models.resnet18`` with random weights and random BN statistics.

Each export is converted into all three frameworks' native files, loaded with each framework's
``load`` and run: the logits agree with the Paddle model's own within ``settings.FORWARD_TOL``
(1e-5, max-abs error over ``max(1, max|ref|)``, float32), on an even and an odd input size
(MiniModel: its fixed 32x32). Broken exports are refused with the user's path and what was
expected.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from resnet_core import cli, porting, spec
from resnet_core.parity import compare, settings
from resnet_core.weights import random_input, random_weights

from .helpers import REPO, require
from .test_third_party import randomize_paddle

pytestmark = pytest.mark.porting

TOL = settings.FORWARD_TOL
NATIVE = {"torch": ".pth", "keras": ".weights.h5", "paddle": ".pdparams"}
SIZES = {"resnet18": [(64, 64), (67, 53)], "minimodel": [(32, 32)]}


def _assert_close(name: str, ref, got) -> None:
    e = compare.probe_error(name, np.asarray(ref, np.float64), np.asarray(got, np.float64))
    assert e.passes(TOL), f"{name}: {e.problem or f'error {e.error:.3e} > {TOL:g}'}"


def _spec(h=None, w=None):
    import paddle

    return [paddle.static.InputSpec([None, 3, h, w], "float32")]


def _logits(net, x: np.ndarray) -> np.ndarray:
    import paddle

    with paddle.no_grad():
        return net(paddle.to_tensor(x)).numpy()


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """name -> (export's .pdiparams path, the Paddle model it came from, its config)."""
    pd = require("paddle")
    import paddle
    from paddle.vision.models import resnet18

    root = tmp_path_factory.mktemp("jit")
    out = {}
    for name, cfg, hw in [
        ("ours-imagenet", spec.make_config("resnet18", stem="imagenet", num_classes=10), (64, 64)),
        ("ours-cifar", spec.make_config("resnet18", stem="cifar", num_classes=5), (32, 32)),
        ("ours-minimodel", spec.make_config("minimodel"), (32, 32)),
    ]:
        net = pd.build(cfg.model, **cfg.to_dict())
        pd.import_weights(net, random_weights(cfg, seed=11))
        net.eval()
        paddle.jit.save(net, str(root / name / "inference"), input_spec=_spec(*hw))  # our models check their size
        out[name] = (root / name / "inference.pdiparams", net, cfg)
    vision = resnet18(num_classes=7)
    randomize_paddle(vision, seed=41)
    vision.eval()
    paddle.jit.save(vision, str(root / "vision" / "inference"), input_spec=_spec())
    out["paddle.vision"] = (
        root / "vision" / "inference.pdiparams",
        vision,
        spec.make_config("resnet18", stem="imagenet", num_classes=7),
    )
    return out


@pytest.mark.parametrize("fw", ["torch", "keras", "paddle"])
@pytest.mark.parametrize("name", ["ours-imagenet", "ours-cifar", "ours-minimodel", "paddle.vision"])
def test_paddle_jit_exports_port_to_every_framework(exports, name, fw, tmp_path):
    path, net, cfg = exports[name]
    mod = require(fw)
    dst = tmp_path / f"{fw}{NATIVE[fw]}"
    source, _ = porting.convert(path, dst)
    assert source.scheme == "paddle" and source.config == cfg
    assert any("not run" in n for n in source.notes)
    ported = mod.load(dst)
    for h, w in SIZES[cfg.model]:
        x = random_input(cfg, 2, h, w, seed=6)
        _assert_close(f"{name} -> {fw} {h}x{w}: logits", _logits(net, x), mod.probe_outputs(ported, x)["output"])


def test_a_minimodel_without_softmax_says_so_in_its_program(tmp_path):
    """MiniModel's softmax is no weight: it is read from the program (a ``softmax`` op or not)."""
    pd = require("paddle")
    import paddle

    cfg = spec.make_config("minimodel", softmax=False, num_classes=4)
    net = pd.build(cfg.model, **cfg.to_dict())
    pd.import_weights(net, random_weights(cfg, seed=2))
    net.eval()
    paddle.jit.save(net, str(tmp_path / "m"), input_spec=_spec(32, 32))
    assert porting.read(tmp_path / "m.pdiparams").config == cfg


LEGACY = """
import sys, numpy as np, paddle
from paddle.vision.models import resnet18
sys.path.insert(0, {repo!r})
from parity_tests.test_third_party import randomize_paddle
net = resnet18(num_classes=3)
randomize_paddle(net, seed=43)
net.eval()
paddle.jit.save(net, {prefix!r}, input_spec=[paddle.static.InputSpec([None, 3, None, None], "float32")])
x = np.random.default_rng(0).standard_normal((2, 3, 67, 53)).astype("float32")
np.save({prefix!r} + ".x.npy", x)
np.save({prefix!r} + ".logits.npy", net(paddle.to_tensor(x)).numpy())
"""


@pytest.fixture(scope="module")
def legacy_export(tmp_path_factory):
    """paddle.vision resnet18 saved by ``paddle.jit.save`` with the legacy IR (``FLAGS_enable_pir_api=0``)."""
    require("paddle")
    prefix = str(tmp_path_factory.mktemp("legacy") / "inference")
    env = {**os.environ, "FLAGS_enable_pir_api": "0"}
    code = textwrap.dedent(LEGACY.format(repo=str(REPO), prefix=prefix))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert os.path.exists(prefix + ".pdmodel") and os.path.exists(prefix + ".pdiparams.info")
    return prefix


@pytest.mark.parametrize("fw", ["torch", "keras", "paddle"])
def test_a_legacy_export_is_named_by_its_info_file(legacy_export, fw, tmp_path):
    mod = require(fw)
    dst = tmp_path / f"{fw}{NATIVE[fw]}"
    source, _ = porting.convert(legacy_export + ".pdiparams", dst)
    assert source.scheme == "paddle" and source.config.num_classes == 3
    assert any(".pdiparams.info" in n for n in source.notes)
    x = np.load(legacy_export + ".x.npy")
    _assert_close(
        f"legacy -> {fw}: logits", np.load(legacy_export + ".logits.npy"), mod.probe_outputs(mod.load(dst), x)["output"]
    )


# --------------------------------------------------------------------------- what is refused
def _copy(exports, name: str, tmp_path) -> str:
    src = exports[name][0]
    for suffix in (".pdiparams", ".json"):
        shutil.copy(str(src)[: -len(".pdiparams")] + suffix, tmp_path / f"inference{suffix}")
    return str(tmp_path / "inference.pdiparams")


def _refused(path: str, capsys) -> str:
    assert cli.main(["inspect", path]) == 2
    err = capsys.readouterr().err
    assert path in err and "nothing was executed" in err
    return err


def test_a_truncated_parameters_file_names_the_path(exports, tmp_path, capsys):
    path = _copy(exports, "paddle.vision", tmp_path)
    data = pathlib.Path(path).read_bytes()
    pathlib.Path(path).write_bytes(data[: len(data) // 2])
    err = _refused(path, capsys)
    assert "the file ends inside its data" in err and "truncated file?" in err


def test_a_corrupted_parameters_file_names_the_path(exports, tmp_path, capsys):
    path = _copy(exports, "paddle.vision", tmp_path)
    data = bytearray(pathlib.Path(path).read_bytes())
    data[:4] = b"\x07\0\0\0"
    pathlib.Path(path).write_bytes(bytes(data))
    assert "version 7, expected 0" in _refused(path, capsys)


def test_a_corrupted_program_names_both_files(exports, tmp_path, capsys):
    path = _copy(exports, "paddle.vision", tmp_path)
    program = tmp_path / "inference.json"
    program.write_text(program.read_text()[:1000])
    err = _refused(path, capsys)
    assert str(program) in err and "not a JSON program" in err


def test_parameters_of_another_export_are_refused(exports, tmp_path, capsys):
    path = _copy(exports, "paddle.vision", tmp_path)
    minimodel = str(exports["ours-minimodel"][0])[: -len(".pdiparams")] + ".json"
    shutil.copy(minimodel, tmp_path / "inference.json")
    assert "declares 158 parameters, the .pdiparams file holds 102 tensors" in _refused(path, capsys)


def test_an_export_without_its_program_says_how_to_get_a_state_dict(tmp_path, capsys):
    (tmp_path / "inference.pdiparams").write_bytes(b"\0" * 64)
    err = _refused(str(tmp_path / "inference.pdiparams"), capsys)
    assert "expected its program beside it (inference.json or inference.pdmodel); found neither" in err
    assert "paddle.jit.load(prefix)" in err and "state_dict()" in err


def test_a_program_of_another_network_is_refused(tmp_path, capsys):
    require("paddle")
    import paddle
    from paddle import nn

    net = nn.Sequential(nn.Conv2D(3, 8, 3), nn.BatchNorm2D(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 4))
    net.eval()
    paddle.jit.save(net, str(tmp_path / "other"), input_spec=_spec(32, 32))
    err = _refused(str(tmp_path / "other.pdiparams"), capsys)
    assert "the program's 3 layers (1 conv2d, 1 batch_norm, 1 linear) are no ResNet-18 or MiniModel" in err


def test_a_legacy_info_pickle_asking_for_code_is_refused(legacy_export, tmp_path, capsys):
    for suffix in (".pdiparams", ".pdmodel"):
        shutil.copy(legacy_export + suffix, tmp_path / f"inference{suffix}")
    (tmp_path / "inference.pdiparams.info").write_bytes(pickle.dumps({"conv2d_0.w_0": {"structured_name": os.getcwd}}))
    err = _refused(str(tmp_path / "inference.pdiparams"), capsys)
    assert "asks for posix.getcwd; refused" in err
    os.remove(tmp_path / "inference.pdiparams.info")
    assert "names its parameters in inference.pdiparams.info, which is not beside it" in _refused(
        str(tmp_path / "inference.pdiparams"), capsys
    )
