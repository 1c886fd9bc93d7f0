"""``verify`` and ``report --weights``: a port checked on the user's own weights, and the checks can fail.

The weights are random with random BN statistics (a stand-in for a user's trained file);
a port broken in one BN statistic must fail ``verify`` and be named as the first diverging
layer, so the passing cases are not vacuous.
"""

from __future__ import annotations

import numpy as np
import pytest

from resnet_core import cli, porting, spec
from resnet_core.parity import Matrix
from resnet_core.parity.verify import load_inputs, verify
from resnet_core.weights import random_weights

from .helpers import require

pytestmark = pytest.mark.porting

CFG = spec.make_config("resnet18", stem="cifar", num_classes=7)
BROKEN = "layer2.0.bn1"  # the layer whose running variance the broken port scales


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """A PyTorch state dict with random weights and BN statistics."""
    require("torch")
    path = tmp_path_factory.mktemp("verify") / "trained.pth"
    porting.write(path, CFG, random_weights(CFG, seed=17))
    return path


def test_verify_passes_a_good_port_in_every_framework(src, tmp_path, capsys):
    for fw in ("keras", "paddle"):
        require(fw)
    images = tmp_path / "images"
    images.mkdir()
    pil = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(3)
    for i in range(3):
        pil.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(images / f"{i}.png")
    assert cli.main(["verify", str(src), "--inputs", str(images)]) == 0
    out = capsys.readouterr().out
    for fw, ext in (("torch", ".pth"), ("keras", ".weights.h5"), ("paddle", ".pdparams")):
        assert f"-> {fw} (port{ext}), fixed inputs: all" in out
        assert f"-> {fw} (port{ext}), inputs {images}: all" in out
    assert "layer4   layer4.1   error" in out and "PASS: 6 of 6" in out


def test_a_port_with_one_bn_statistic_scaled_fails_and_names_the_layer(src, tmp_path, capsys):
    require("paddle")
    weights = porting.read(src).weights
    weights[f"{BROKEN}.running_var"] = weights[f"{BROKEN}.running_var"] * 1.5
    dst = tmp_path / "broken.pdparams"
    porting.write(dst, CFG, weights)
    assert cli.main(["verify", str(src), str(dst)]) == 1
    out = capsys.readouterr().out
    assert f"first diverging layer in execution order is '{BROKEN}'" in out and "FAIL: 0 of 1" in out


def test_convert_verify(src, tmp_path, capsys):
    require("keras")
    assert cli.main(["convert", str(src), str(tmp_path / "port.keras"), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "-> keras (port.keras), fixed inputs: all 53 layers agree" in out and "PASS" in out


def test_verify_refuses_a_port_of_other_weights_config(src, tmp_path):
    other = spec.make_config("resnet18", stem="cifar", num_classes=3)
    dst = tmp_path / "other.safetensors"
    porting.write_canonical(dst, other, random_weights(other, 1))
    with pytest.raises(ValueError, match="not a port of it"):
        verify(src, dst)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_npy_inputs_in_either_layout(layout, tmp_path):
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 12)).astype(np.float32)
    np.save(tmp_path / "x.npy", x if layout == "nchw" else x.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(load_inputs(tmp_path / "x.npy", CFG), x)


def test_inputs_that_do_not_fit_are_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 5, 16, 16), np.float32))
    with pytest.raises(ValueError, match="with 3 channels, received shape"):
        load_inputs(tmp_path / "x.npy", CFG)


# --------------------------------------------------------------------------- report --weights
def test_the_matrix_runs_on_the_users_weights(src):
    for fw in ("torch", "paddle"):
        require(fw)
    user = porting.read(src)
    m = Matrix("cpu", ["torch", "paddle"])
    vid = m.add_weights("trained.pth", user.config, user.weights)
    held = m.held("paddle", vid, "torch")  # what paddle holds after the torch -> paddle transfer
    for k, a in user.weights.items():
        np.testing.assert_array_equal(held[k], a, err_msg=k)
    random = m.canonical("resnet18-cifar")
    assert not np.array_equal(random["fc.weight"][:7], held["fc.weight"])  # negative control: not the seeded set
    assert m.eval_forward(vid, ("torch", "paddle"), (32, 32)).passed


def test_report_weights_cli(src, tmp_path, capsys):
    for fw in ("torch", "paddle"):
        require(fw)
    argv = ["report", "--weights", str(src), "--framework", "torch", "--framework", "paddle", "--level", "eval"]
    assert cli.main([*argv, "--quick", "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    # both directions agree bit for bit, so the report merges them into one row (resnet_core.parity.report)
    rows = [line for line in out.splitlines() if line.startswith("trained.pth") and " eval " in line]
    assert len(rows) == 1 and "torch <-> paddle" in rows[0] and "32x32" in rows[0], out
    assert " passed, 0 failed" in out and "FAIL" not in out, out
