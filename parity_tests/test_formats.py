"""The checkpoints people have: Hugging Face transformers, training checkpoints, TorchScript.

Hugging Face files are written by transformers itself (installed here: it needs no other
torch) from a ``ResNetForImageClassification`` built with ResNet-18's config and random
weights and BN statistics, and the folders this project writes are loaded back with
``from_pretrained``. Each source is converted into all three frameworks and compared with
the source library's own forward pass: the stem, every stage, the pooled features and the
logits, within ``settings.FORWARD_TOL``.

timm and torchvision do not install beside the local torch 2.13 CPU build, and Lightning is
not installed: their files are written here following their sources, as each test says.
keras-hub's files are written and loaded by the real keras-hub in ``test_keras_hub.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import zipfile

import numpy as np
import pytest

from resnet_core import cli, porting, spec
from resnet_core.parity import compare, settings
from resnet_core.weights import random_input, random_weights

from .helpers import require
from .test_third_party import randomize_torch, torchvision_resnet18

torch = pytest.importorskip(
    "torch", reason="the HF, torchvision, timm, Lightning and TorchScript files are written with PyTorch"
)

pytestmark = pytest.mark.porting

TOL = settings.FORWARD_TOL
NATIVE = {"torch": ".pth", "keras": ".weights.h5", "paddle": ".pdparams"}
HW = 64  # 2x the total stride of the ImageNet stem: every stage sees more than one position


def _x(cfg: spec.Config) -> np.ndarray:
    return random_input(cfg, 2, HW, HW, seed=5)


def _assert_close(name: str, ref, got) -> None:
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    e = compare.probe_error(name, ref.reshape(got.shape) if ref.size == got.size else ref, got)
    assert e.passes(TOL), f"{name}: {e.problem or f'error {e.error:.3e} > {TOL:g}'}"


def _ported_probes(src, fw: str, tmp_path, **kwargs) -> tuple[dict[str, np.ndarray], porting.Source]:
    """Convert ``src`` into ``fw``'s native file, load it with ``fw``'s own ``load``, run every probe."""
    mod = require(fw)
    dst = tmp_path / f"{fw}{NATIVE[fw]}"
    source, _ = porting.convert(src, dst, overwrite=True, **kwargs)
    net = mod.load(dst)
    return mod.probe_outputs(net, _x(source.config)), source


# --------------------------------------------------------------------------- Hugging Face transformers
def _hf_model(num_labels: int = 10, backbone: bool = False):
    transformers = pytest.importorskip("transformers")
    config = transformers.ResNetConfig(
        depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512], layer_type="basic", num_labels=num_labels
    )
    model = (transformers.ResNetModel if backbone else transformers.ResNetForImageClassification)(config)
    randomize_torch(model, seed=21)
    return model.eval()


def _hf_reference(model, x: np.ndarray) -> dict[str, np.ndarray]:
    """transformers' own outputs under the canonical stage probe names."""
    import torch

    with torch.no_grad():
        out = model(torch.from_numpy(x), output_hidden_states=True)
    hidden = [h.numpy() for h in out.hidden_states]
    ref = dict(zip(["maxpool", "layer1.1", "layer2.1", "layer3.1", "layer4.1"], hidden, strict=True))
    if hasattr(out, "logits"):
        ref["output"] = out.logits.numpy()
    else:
        ref["avgpool"] = out.pooler_output.numpy()
    return ref


@pytest.fixture(scope="module")
def hf_files(tmp_path_factory):
    """One transformers classifier saved three ways: save_pretrained folder, model.safetensors, pytorch_model.bin."""
    import torch

    model = _hf_model()
    root = tmp_path_factory.mktemp("hf")
    model.save_pretrained(root / "folder")
    files = {
        "folder": root / "folder",
        "safetensors": root / "folder" / "model.safetensors",
        "bin": root / "pytorch_model.bin",
    }
    torch.save(model.state_dict(), files["bin"])
    return model, files


@pytest.mark.parametrize("fw", ["torch", "keras", "paddle"])
@pytest.mark.parametrize("form", ["folder", "safetensors", "bin"])
def test_hugging_face_files_port_to_every_framework(hf_files, form, fw, tmp_path):
    model, files = hf_files
    got, source = _ported_probes(files[form], fw, tmp_path)
    assert source.scheme == "hf" and source.config.stem == "imagenet" and source.config.num_classes == 10
    for name, ref in _hf_reference(model, _x(source.config)).items():
        _assert_close(f"{form} -> {fw}: {name}", ref, got[name])


def test_hugging_face_backbone_ports_its_features(tmp_path):
    """A ``ResNetModel`` (no classifier) ports its features; the new classifier is zero and says so."""
    import torch

    model = _hf_model(backbone=True)
    src = tmp_path / "backbone.bin"
    torch.save(model.state_dict(), src)
    got, source = _ported_probes(src, "torch", tmp_path, overrides={"num_classes": 7})
    assert source.scheme == "hf-backbone" and source.config.num_classes == 7
    assert any("backbone without classifier" in n for n in source.notes)
    for name, ref in _hf_reference(model, _x(source.config)).items():
        _assert_close(name, ref, got[name])


@pytest.mark.parametrize("source_fw", ["torch", "keras", "paddle"])
def test_written_folder_loads_in_transformers_with_the_same_logits(source_fw, tmp_path):
    transformers = pytest.importorskip("transformers")
    import torch

    mod = require(source_fw)
    cfg = spec.make_config("resnet18", stem="imagenet", num_classes=5)
    net = mod.build("resnet18", **cfg.to_dict())
    mod.import_weights(net, random_weights(cfg, seed=3))
    src = tmp_path / f"src{NATIVE[source_fw]}"
    mod.save(net, src)
    assert cli.main(["convert", str(src), str(tmp_path / "hf") + "/"]) == 0
    hf, info = transformers.ResNetForImageClassification.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert info == {"missing_keys": set(), "unexpected_keys": set(), "mismatched_keys": set(), "error_msgs": []}
    x = _x(cfg)
    with torch.no_grad():
        logits = hf.eval()(torch.from_numpy(x)).logits.numpy()
    _assert_close("logits", mod.probe_outputs(net, x)["output"], logits)


def test_a_config_of_another_resnet_is_refused(hf_files, tmp_path, capsys):
    _, files = hf_files
    folder = tmp_path / "r50"
    folder.mkdir()
    config = json.loads((files["folder"] / "config.json").read_text())
    config.update(depths=[3, 4, 6, 3], layer_type="bottleneck", hidden_sizes=[256, 512, 1024, 2048])
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes((files["folder"] / "model.safetensors").read_bytes())
    assert cli.main(["inspect", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "describes another network" in err and "depths=[3, 4, 6, 3]" in err and "layer_type='basic'" in err


def test_a_cifar_stem_is_not_written_as_a_hugging_face_folder(tmp_path, capsys):
    cfg = spec.make_config("resnet18", stem="cifar")
    src = tmp_path / "w.safetensors"
    porting.write_canonical(src, cfg, random_weights(cfg, 1))
    assert cli.main(["convert", str(src), str(tmp_path / "hf"), "--to", "hf"]) == 2
    assert "stem='imagenet'" in capsys.readouterr().err
    assert not (tmp_path / "hf").exists()


# --------------------------------------------------------------------------- training checkpoints
def _torchvision_model(seed: int):
    model = torchvision_resnet18(num_classes=10)
    randomize_torch(model, seed)
    return model.eval()


def _logits_equal(model, fw_logits: np.ndarray, cfg) -> None:
    import torch

    with torch.no_grad():
        ref = model(torch.from_numpy(_x(cfg))).numpy()
    _assert_close("logits", ref, fw_logits)


def test_torchvision_references_checkpoint(tmp_path):
    """``references/classification/train.py``'s checkpoint: model, optimizer, lr_scheduler, epoch, args (Namespace)."""
    import torch

    model = _torchvision_model(41)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=30)
    args = argparse.Namespace(model="resnet18", lr=0.1, epochs=90, data_path="/data", amp=False, weights=None)
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict()}
    torch.save({**ckpt, "epoch": 3, "args": args}, tmp_path / "checkpoint.pth")
    got, source = _ported_probes(tmp_path / "checkpoint.pth", "paddle", tmp_path)
    assert any("'model' entry" in n for n in source.notes)
    _logits_equal(model, got["output"], source.config)


def test_timm_checkpoint_and_its_ema(tmp_path, capsys):
    """timm train.py's CheckpointSaver: epoch, arch, state_dict, optimizer, version, args, state_dict_ema, metric."""
    import torch

    model, ema = _torchvision_model(51), _torchvision_model(52)
    args = argparse.Namespace(model="resnet18", model_ema=True, lr=0.05, epochs=100)
    torch.save(
        {"epoch": 9, "arch": "resnet18", "state_dict": model.state_dict(),
         "optimizer": {"state": {}, "param_groups": []}, "version": 2, "args": args,
         "state_dict_ema": ema.state_dict(), "metric": 71.5},
        tmp_path / "model_best.pth.tar",
    )  # fmt: skip
    got, source = _ported_probes(tmp_path / "model_best.pth.tar", "torch", tmp_path)
    assert any("--ema reads those" in n for n in source.notes)
    _logits_equal(model, got["output"], source.config)
    got, _ = _ported_probes(tmp_path / "model_best.pth.tar", "keras", tmp_path, ema=True)
    _logits_equal(ema, got["output"], source.config)


def test_lightning_checkpoint(tmp_path, monkeypatch):
    """A Lightning ``.ckpt``: ``state_dict`` of a LightningModule holding the net as ``self.model``, and
    ``hyper_parameters`` as Lightning's ``AttributeDict`` (a dict subclass, lightning/fabric/utilities/data.py).
    Lightning is not installed: the class is a stand-in registered under Lightning's module path while saving."""
    import torch

    fake = types.ModuleType("lightning.fabric.utilities.data")
    fake.AttributeDict = type("AttributeDict", (dict,), {"__module__": "lightning.fabric.utilities.data"})
    for name in ("lightning", "lightning.fabric", "lightning.fabric.utilities"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    model = _torchvision_model(61)
    torch.save(
        {"epoch": 4, "global_step": 400, "pytorch-lightning_version": "2.5.0",
         "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
         "loops": {}, "callbacks": {}, "optimizer_states": [], "lr_schedulers": [],
         "hparams_name": "kwargs", "hyper_parameters": fake.AttributeDict(lr=0.1, num_classes=10)},
        tmp_path / "epoch=4.ckpt",
    )  # fmt: skip
    monkeypatch.delitem(sys.modules, fake.__name__)  # reading needs no Lightning
    got, source = _ported_probes(tmp_path / "epoch=4.ckpt", "torch", tmp_path)
    assert any("'model.' prefix" in n for n in source.notes)
    _logits_equal(model, got["output"], source.config)


def test_checkpoint_globals_stay_a_short_list(tmp_path, capsys):
    """Negative control: allowing Namespace must not open the door to other globals (weights_only stays on)."""
    import fractions

    import torch

    model = _torchvision_model(71)
    torch.save({"model": model.state_dict(), "args": fractions.Fraction(1, 3)}, tmp_path / "ckpt.pth")
    assert cli.main(["inspect", str(tmp_path / "ckpt.pth")]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "nothing was executed" in err and "fractions.Fraction" in err


# --------------------------------------------------------------------------- exports
def test_torchscript_parameters_are_read_without_running_it(tmp_path):
    import torch

    mod = require("torch")
    cfg = spec.make_config("resnet18", stem="imagenet")
    net = mod.build("resnet18", **cfg.to_dict())
    mod.import_weights(net, random_weights(cfg, 81))
    with pytest.warns(torch.jit.TracerWarning):
        torch.jit.trace(net.eval(), torch.zeros(1, 3, HW, HW)).save(tmp_path / "traced.pt")
    got, source = _ported_probes(tmp_path / "traced.pt", "paddle", tmp_path)
    assert any("TorchScript" in n for n in source.notes)
    _assert_close("output", mod.probe_outputs(net, _x(cfg))["output"], got["output"])


def test_a_torchscript_archive_asking_for_code_is_refused(tmp_path, capsys):
    """Negative control: a data.pkl that names a global beyond the module tree's is refused, never called."""
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/code/__torch__.py", "")
        z.writestr("evil/data.pkl", b"cos\nsystem\n(S'echo pwned'\ntR.")
    assert cli.main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "TorchScript archive" in err and "os.system" in err and "nothing was executed" in err


# --------------------------------------------------------------------------- errors
def test_no_scheme_fits_names_the_closest_by_share_and_the_misfits(tmp_path, capsys):
    """A torchvision file whose layer4 is renamed: torchvision's scheme is closest, by the share that fit."""
    cfg = spec.make_config("resnet18", stem="imagenet")
    weights = random_weights(cfg, 2)
    renamed = {k.replace("layer4.", "stage4.") if k.startswith("layer4.") else k: v for k, v in weights.items()}
    misfits = [k for k in renamed if k.startswith("stage4.")]
    src = tmp_path / "renamed.safetensors"
    porting.canonical.save_file(src, renamed)
    assert cli.main(["inspect", str(src)]) == 2
    err = capsys.readouterr().err
    fit = len(renamed) - len(misfits)
    assert f"closest is 'canonical' for resnet18, which {fit} of the {len(renamed)} tensors fit" in err
    assert f"({fit / len(renamed):.0%};" in err and f"{len(misfits)} tensor(s) did not fit: " in err
    # the file's order (the safetensors library stores tensors sorted): the first misfit listed is one of them
    listed = err.split(f"{len(misfits)} tensor(s) did not fit: ")[1].split(",")[0].strip()
    assert listed in misfits, listed


def test_library_messages_are_not_cut(tmp_path):
    """A reader's error carries the library's whole message (they were cut at 200/300 characters)."""
    from resnet_core.porting import readers

    long = " ".join(f"word{i}" for i in range(120)) + " the-end"
    e = readers._corrupted("f.pth", porting.format_of("f.pth"), RuntimeError(long))
    assert str(e).endswith(f"(RuntimeError: {long})")
