"""d2l's ResNet-18 (seed 003, variant ``resnet18-d2l``) checked against the seed's own code.

The reference is the seed's network itself (``parity_tests/seed_models.py``, d2l's ``Residual``,
``resnet_block`` and ``nn.Sequential`` verbatim), never our spec: its parameter and BN-statistic
counts, the stage shapes it prints, its state_dict's names and shapes, and its forward pass.
A state_dict saved from it with ``torch.save(net.state_dict(), path)``, the way d2l saves one,
is converted by the CLI into each framework's native format, loaded there and run: the logits
and every stage must agree with the seed network's own output. The eval, train, gradient and
optimizer parity of the variant run in test_forward.py and test_training.py through the variant table.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from resnet_core import cli, porting, spec
from resnet_core.porting import schemes
from resnet_core.weights import random_input

from .helpers import require
from .seed_models import D2L_PRINTED_SHAPES_224, D2L_STAGES, d2l_resnet18
from .test_porting import NATIVE, TOL, scaled_error
from .test_structure import EXPECTED_COUNTS
from .test_third_party import randomize_torch

torch = pytest.importorskip("torch", reason="the seed's own d2l network is PyTorch code; torch is not installed")

VARIANT = "resnet18-d2l"
ODD = (97, 75)  # the variant's odd eval size: odd and even sizes at every stride-2 layer


def _cfg() -> spec.Config:
    return spec.variant(VARIANT).config


def seed_counts(net) -> tuple[int, int]:
    """(trainable parameters, BN running statistics) of a PyTorch module, counted on the module itself."""
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    stats = sum(b.numel() for n, b in net.named_buffers() if n.endswith(("running_mean", "running_var")))
    return trainable, stats


def seed_stage_outputs(net, x: np.ndarray) -> dict[str, np.ndarray]:
    """The seed's loop (``for layer in net: X = layer(X)``) in eval mode, keeping each stage's output."""
    import torch

    out, h = {}, torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    net.eval()
    with torch.no_grad():
        for index, layer in enumerate(net):
            h = layer(h)
            if str(index) in D2L_STAGES:
                out[D2L_STAGES[str(index)]] = h.detach().clone().numpy()
    return out


# --------------------------------------------------------------------------- structure, from the seed's code
@pytest.mark.structure
def test_counts_come_from_the_seed():
    """The spec's counts and the stated figure of test_structure equal the seed network's own."""
    require("torch")
    got = seed_counts(d2l_resnet18())
    assert got == EXPECTED_COUNTS[VARIANT]
    assert (spec.counts(_cfg()).trainable, spec.counts(_cfg()).bn_statistics) == got


@pytest.mark.structure
def test_framework_counts_equal_the_seed(fw):
    require("torch")
    v = spec.variant(VARIANT)
    got = fw.count_params(fw.build(v.model, **v.kwargs))
    assert (got.trainable, got.bn_statistics) == seed_counts(d2l_resnet18())


@pytest.mark.structure
def test_seed_prints_the_stated_shapes_and_the_spec_walks_them():
    """The seed's loop at 224x224 gives the shapes it prints; at an odd size the spec's walk agrees too."""
    import torch

    require("torch")
    net = d2l_resnet18()
    x = torch.rand(size=(1, 1, 224, 224)).numpy()  # the seed's own probe input
    got = {k: v.shape[1:] for k, v in seed_stage_outputs(net, x).items()}
    assert got == D2L_PRINTED_SHAPES_224 == spec.stage_shapes(_cfg(), 224, 224)
    odd = {k: v.shape[1:] for k, v in seed_stage_outputs(net, random_input(_cfg(), 1, *ODD)).items()}
    assert odd == spec.stage_shapes(_cfg(), *ODD)


@pytest.mark.structure
def test_seed_state_dict_is_the_spec_under_the_d2l_scheme():
    """Every tensor of the seed's state_dict, with its shape, is a canonical tensor under the d2l names, and back.

    This is also where the seed's architecture is pinned: conv biases everywhere (``1.0.conv1.bias``,
    ``2.0.conv3.bias``) and no BN after ``conv3`` (no ``2.0.bn3``).
    """
    require("torch")
    sd = {k: tuple(v.shape) for k, v in d2l_resnet18().state_dict().items() if not k.endswith("num_batches_tracked")}
    expected = schemes.expected_names(schemes.get("d2l"), _cfg())
    # Same tensors and shapes; the order differs (Residual creates conv1, conv2, conv3, then bn1, bn2).
    assert sd == {k: p.shape for k, p in expected.items()}
    assert {"0.0.bias", "1.0.conv1.bias", "4.1.conv2.bias", "2.0.conv3.bias"} <= set(sd)
    assert not [k for k in sd if k.startswith(("2.0.bn3", "2.0.conv3.1"))]


# --------------------------------------------------------------------------- porting the seed's file
_SEED: dict[str, tuple] = {}


@pytest.fixture(scope="module")
def seed_file(tmp_path_factory):
    """(path of the seed network's state_dict, input, the seed's stage outputs), made once."""
    if "file" not in _SEED:
        import torch

        require("torch")
        net = d2l_resnet18()
        randomize_torch(net, seed=3)  # random weights and BN statistics, far from their 0/1 defaults
        path = tmp_path_factory.mktemp("d2l") / "resnet18_fashion_mnist.pt"
        torch.save(net.state_dict(), path)
        x = random_input(_cfg(), 2, *ODD, seed=13)
        _SEED["file"] = (path, x, seed_stage_outputs(net, x))
    return _SEED["file"]


@pytest.mark.porting
def test_seed_state_dict_ports_to_every_framework(seed_file, fw, framework, tmp_path, capsys):
    path, x, ref = seed_file
    dst = tmp_path / f"ported{NATIVE[framework][0]}"
    assert cli.main(["convert", str(path), str(dst)]) == 0
    printed = capsys.readouterr().out
    assert "scheme d2l: " in printed, printed
    net = fw.load(dst)
    assert fw.config_of(net) == _cfg()  # 1 channel and 10 classes from the shapes; the biases and no BN from the names
    got = fw.probe_outputs(net, x)
    probe_of = {p.stage: p.name for p in spec.stages(_cfg())}
    assert set(ref) == set(probe_of)  # every stage, the logits included
    for stage, want in ref.items():
        err = scaled_error(got[probe_of[stage]], want)
        assert err <= TOL, f"d2l -> {framework}: {stage} ({probe_of[stage]}) differs by {err:.3g}"
    assert scaled_error(got["output"], ref["logits"]) <= TOL


@pytest.mark.porting
def test_the_console_command_converts_the_seed_file(seed_file, tmp_path):
    """``python -m resnet_core.cli convert`` (what ``resnet-parity convert`` runs) in its own process."""
    path, _, _ = seed_file
    dst = tmp_path / "d2l.safetensors"
    r = subprocess.run(
        [sys.executable, "-m", "resnet_core.cli", "convert", str(path), str(dst)],
        capture_output=True,
        text=True,
        cwd=pathlib.Path(__file__).resolve().parents[1],  # the repository's code, as the other CLI tests run it
    )
    assert r.returncode == 0, r.stderr
    assert "scheme d2l: " in r.stdout and f"wrote {dst}" in r.stdout
    src = porting.read(dst)
    assert (src.config, src.scheme) == (_cfg(), "canonical")  # the canonical file states the config
    direct = porting.read(path).weights
    assert list(src.weights) == list(direct)
    assert all(src.weights[k].tobytes() == direct[k].tobytes() for k in direct)


@pytest.mark.porting
def test_the_comparison_sees_the_shortcut_bias(seed_file):
    """Negative control: the same port with the conv3 (shortcut) bias of one block zeroed fails from that stage on."""
    fw = require("torch")
    path, x, ref = seed_file
    net = fw.load(path)
    weights = fw.export_weights(net)
    weights["layer3.0.downsample.0.bias"] = np.zeros_like(weights["layer3.0.downsample.0.bias"])
    fw.import_weights(net, weights)
    got = fw.probe_outputs(net, x)
    assert scaled_error(got["layer2.1"], ref["layer2"]) <= TOL
    assert scaled_error(got["layer3.1"], ref["layer3"]) > 100 * TOL


@pytest.mark.porting
def test_inspect_names_the_d2l_scheme(seed_file, capsys):
    path, _, _ = seed_file
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "scheme  d2l: d2l's ResNet-18" in out
    assert '"stem": "imagenet", "in_channels": 1, "shortcut_bias": true, "conv_bias": true, "shortcut_bn": false' in out
    assert "2.0.conv3.bias" in out and "layer2.0.downsample.0.bias" in out  # the file's name and the canonical one
    c = EXPECTED_COUNTS[VARIANT]
    assert f"{c[0]:,} trainable + {c[1]:,} BN statistics" in out


@pytest.mark.porting
def test_d2l_names_state_channels_and_classes_by_their_shapes(tmp_path):
    """A d2l net for RGB input and 100 classes: the same names, the options read off ``0.0.weight`` and ``7.weight``."""
    import torch

    require("torch")
    sd = d2l_resnet18().state_dict()
    sd["0.0.weight"] = torch.randn(64, 3, 7, 7)
    sd["7.weight"], sd["7.bias"] = torch.randn(100, 512), torch.randn(100)
    torch.save(sd, tmp_path / "rgb100.pt")
    src = porting.read(tmp_path / "rgb100.pt")
    assert src.scheme == "d2l"
    want = {**spec.variant(VARIANT).kwargs, "in_channels": 3, "num_classes": 100}
    assert src.config == spec.make_config("resnet18", **want)


@pytest.mark.porting
def test_a_d2l_file_with_a_stray_tensor_names_the_closest_scheme(tmp_path):
    """A BN after conv3 (not d2l's code) fits no scheme exactly: the error names d2l as closest and the tensors."""
    import torch

    require("torch")
    sd = d2l_resnet18().state_dict()
    sd["2.0.bn3.weight"] = torch.ones(128)
    torch.save(sd, tmp_path / "bn3.pt")
    with pytest.raises(porting.ConvertError, match=r"closest is 'd2l' for resnet18\b.*did not fit: 2\.0\.bn3\.weight"):
        porting.read(tmp_path / "bn3.pt")
