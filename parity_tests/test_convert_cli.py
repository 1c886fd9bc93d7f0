"""``resnet-parity convert`` and ``inspect``: bad input, safety, atomic writes, imports, the file format.

Every bad input must give a one-line error that says what was expected and what
was received, exit with status 2, and write nothing: DST absent (or untouched),
and no temp file left beside it. A pickle that carries code is refused, never run.
"""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from resnet_core import atomic, cli, porting, spec
from resnet_core.weights import random_weights

from .helpers import require

pytestmark = pytest.mark.porting
ROOT = pathlib.Path(__file__).resolve().parents[1]
CFG = spec.make_config("resnet18")


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return random_weights(CFG, seed=21)


@pytest.fixture
def canonical(tmp_path, weights) -> pathlib.Path:
    path = tmp_path / "src" / "model.safetensors"
    path.parent.mkdir()
    porting.canonical.write(path, CFG, weights, "torch")
    return path


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_refused(argv: list[str], capsys, *fragments: str) -> str:
    """Exit 2, one line on stderr containing every fragment, nothing written in DST's folder."""
    dst = pathlib.Path(argv[2]) if argv[0] == "convert" else None
    before = sorted(os.listdir(dst.parent)) if dst is not None and dst.parent.exists() else None
    rc, out, err = run(argv, capsys)
    assert rc == 2, (rc, out, err)
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    for f in fragments:
        assert f in err, f"{f!r} not in {err!r}"
    if dst is not None:
        after = sorted(os.listdir(dst.parent)) if dst.parent.exists() else None
        assert after == before, f"files appeared or vanished: {before} -> {after}"
    return err


def _torch():
    require("torch")
    import torch

    return torch


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


# --------------------------------------------------------------------------- corrupted files
def _truncate(path: pathlib.Path, keep: float = 0.5) -> pathlib.Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_truncated_canonical_file(canonical, tmp_path, capsys):
    _truncate(canonical)
    assert_refused(["convert", canonical, tmp_path / "out.safetensors"], capsys, "truncated", str(canonical))


# fmt: off
CORRUPTED_SAFETENSORS = [  # case, header, data, message
    ("garbage header", None, b"", "corrupted safetensors header (not valid JSON"),
    ("huge header length", None, b"", "header length"),
    ("offsets out of range", {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8,
     "out of range"),
    ("overlap", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                 "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, "overlaps"),
    ("hole", {"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "hole in the data section"),
    ("unknown dtype", {"a": {"dtype": "F8X", "shape": [1], "data_offsets": [0, 1]}}, b"\0", "unknown dtype 'F8X'"),
    ("size mismatch", {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "needs 12 bytes"),
    ("bad metadata", {"__metadata__": {"format": 1}}, b"", "__metadata__ must map str to str"),
]
# fmt: on


@pytest.mark.parametrize("case, header, data, message", CORRUPTED_SAFETENSORS)
def test_corrupted_safetensors(case, header, data, message, tmp_path, capsys):
    src = tmp_path / "bad.safetensors"
    if case == "garbage header":
        src.write_bytes((12).to_bytes(8, "little") + b"{not json!!}")
    elif case == "huge header length":
        src.write_bytes((2**40).to_bytes(8, "little") + b"{}")
    else:
        src.write_bytes(safetensors_bytes(header, data))
    assert_refused(["convert", src, tmp_path / "out.pt"], capsys, message)


EXTRA_KEY = ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}}, b"\0" * 4)


def test_header_entry_with_an_extra_key_is_refused(tmp_path, capsys):
    src = tmp_path / "extra.safetensors"
    src.write_bytes(safetensors_bytes(*EXTRA_KEY))
    assert_refused(["convert", src, tmp_path / "out.pt"], capsys, "expected dtype, shape and data_offsets")


@pytest.mark.parametrize("case, header, data, message", [*CORRUPTED_SAFETENSORS, ("extra key", *EXTRA_KEY, "")])
def test_the_library_alone_says_less(case, header, data, message, tmp_path):
    """Why canonical.py still checks the header before safetensors reads the data (its docstring's measurement).

    For every broken file above the library alone either refuses without naming the file and without
    the detail our message gives, or (a header entry with an extra key) reads the file.
    """
    safetensors = pytest.importorskip("safetensors")
    safetensors_numpy = pytest.importorskip("safetensors.numpy")

    src = tmp_path / "bad.safetensors"
    if case == "garbage header":
        src.write_bytes((12).to_bytes(8, "little") + b"{not json!!}")
    elif case == "huge header length":
        src.write_bytes((2**40).to_bytes(8, "little") + b"{}")
    else:
        src.write_bytes(safetensors_bytes(header, data))
    try:
        safetensors_numpy.load_file(str(src))
    except safetensors.SafetensorError as e:
        assert str(src) not in str(e) and message not in str(e), (case, str(e))
    else:
        assert case == "extra key", f"the library read the {case!r} file"


def test_truncated_native_files(tmp_path, weights, capsys):
    torch = _torch()
    pt = tmp_path / "m.pt"
    torch.save({k: torch.from_numpy(v) for k, v in weights.items()}, pt)
    pdparams = tmp_path / "m.pdparams"
    with open(pdparams, "wb") as f:  # paddle.save's layout: a pickled dict of numpy arrays
        pickle.dump(weights, f, protocol=4)
    h5py = pytest.importorskip("h5py")
    h5 = tmp_path / "m.weights.h5"
    with h5py.File(h5, "w") as f:
        f.create_dataset("layers/conv2d/vars/0", data=np.zeros((3, 3, 3, 64), np.float32))
    keras_zip = tmp_path / "m.keras"
    keras_zip.write_bytes(b"PK\x03\x04 this is not a zip archive")
    for path, label in (
        (pt, "PyTorch state dict"),
        (pdparams, "Paddle state dict"),
        (h5, "Keras weights file"),
        (keras_zip, "Keras model archive"),
    ):
        if path.suffix != ".keras":
            _truncate(path, 0.4)
        assert_refused(["convert", path, tmp_path / "out.safetensors"], capsys, f"as a {label}: truncated or corrupted")


# --------------------------------------------------------------------------- wrong content
def test_other_architecture_names_the_closest_scheme(tmp_path, weights, capsys):
    """A ResNet-34-like state dict (three blocks in layer1): the closest scheme and the misfits are named."""
    other = dict(weights)
    for k in [k for k in weights if k.startswith("layer1.1.")]:
        other[k.replace("layer1.1.", "layer1.2.")] = weights[k]
    src = tmp_path / "resnet34ish.safetensors"
    porting.canonical.save_file(src, other)  # plain safetensors, no metadata: the names must be detected
    assert_refused(
        ["convert", src, tmp_path / "out.safetensors"],
        capsys,
        "no known naming scheme fits the 112 tensors",
        "closest is 'canonical' for resnet18",
        "10 tensor(s) did not fit: layer1.2.",  # the library writes tensors sorted by name: layer1.2.bn1.bias first
    )


def test_other_model_in_metadata(tmp_path, weights, capsys):
    src = tmp_path / "r50.safetensors"
    meta = porting.canonical.metadata_for(CFG, "torch") | {"model": "resnet50"}
    porting.canonical.save_file(src, weights, meta)
    assert_refused(
        ["convert", src, tmp_path / "out.safetensors"],
        capsys,
        "holds model 'resnet50'",
        "expected one of ['resnet18', 'minimodel']",
    )


def _edited(tmp_path, weights, edit) -> pathlib.Path:
    w = dict(weights)
    edit(w)
    src = tmp_path / "edited.safetensors"
    porting.canonical.save_file(src, w, porting.canonical.metadata_for(CFG, "torch"))
    return src


# fmt: off
BAD_TENSORS = [  # case, edit, message
    ("missing", lambda w: w.pop("layer1.0.bn1.running_var"), "missing 1 canonical tensor(s): layer1.0.bn1.running_var"),
    ("extra", lambda w: w.__setitem__("layer1.0.bn3.weight", np.ones(64, np.float32)),
     "did not fit: layer1.0.bn3.weight"),
    ("mis-shaped", lambda w: w.__setitem__("fc.weight", np.ones((10, 256), np.float32)),
     "fc.weight expected (10, 512), received (10, 256)"),
    ("transposed", lambda w: w.__setitem__("fc.weight", np.ascontiguousarray(w["fc.weight"].T)),
     "fc.weight expected (10, 512), received (512, 10)"),
    ("nan", lambda w: w["layer3.0.conv1.weight"].__setitem__((0, 0, 0, 0), np.nan),
     "NaN/Inf values in 1: layer3.0.conv1.weight"),
]
# fmt: on


@pytest.mark.parametrize("case, edit, message", BAD_TENSORS)
def test_bad_tensors(case, edit, message, tmp_path, weights, capsys):
    w = {k: v.copy() for k, v in weights.items()}
    assert_refused(["convert", _edited(tmp_path, w, edit), tmp_path / "out.pdparams"], capsys, message)


def test_bad_tensors_in_a_native_file(tmp_path, weights, capsys):
    torch = _torch()
    sd = {k: torch.from_numpy(v.copy()) for k, v in weights.items()}
    sd["layer2.0.bn2.bias"] = torch.zeros(64)
    src = tmp_path / "m.pt"
    torch.save(sd, src)
    assert_refused(
        ["convert", src, tmp_path / "out.safetensors"], capsys, "layer2.0.bn2.bias expected (128,), received (64,)"
    )


# --------------------------------------------------------------------------- extensions, existing DST
@pytest.mark.parametrize(
    "src_name, dst_name, message",
    [
        ("model.npz", "out.safetensors", "unsupported extension '.npz' for"),
        ("model.safetensors", "out.onnx", "unsupported extension '.onnx' for"),
        ("model.safetensors", "out", "unsupported extension 'no extension'"),
        ("model.safetensors", "out.h5", "legacy Keras HDF5 model files are read only; write one of"),
    ],
)
def test_unsupported_extension(src_name, dst_name, message, canonical, tmp_path, capsys):
    src = canonical.with_name(src_name)
    if src != canonical:
        src.write_bytes(b"whatever")
    assert_refused(
        ["convert", src, tmp_path / dst_name],
        capsys,
        message,
        ".safetensors, .pt, .pth, .bin,",
        ".weights.h5, .keras, .pdparams",
        "or a Hugging Face folder",
    )


def test_existing_dst_needs_force(canonical, tmp_path, capsys):
    dst = tmp_path / "out.safetensors"
    dst.write_bytes(b"precious")
    assert_refused(["convert", canonical, dst], capsys, "already exists", "--force")
    assert dst.read_bytes() == b"precious"
    rc, out, _ = run(["convert", canonical, dst, "--force"], capsys)
    assert rc == 0 and f"wrote {dst}" in out
    assert porting.read(dst).config == CFG


def test_a_failing_write_leaves_nothing(canonical, tmp_path, capsys, monkeypatch):
    """A failure after the data is written (here: the final rename) removes the temp file."""
    dst = tmp_path / "out.safetensors"
    dst.write_bytes(b"old")

    def fail(*_a, **_k):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(atomic.os, "replace", fail)
    assert_refused(["convert", canonical, dst, "--force"], capsys, "disk full (simulated)")
    assert dst.read_bytes() == b"old"


def test_missing_source(tmp_path, capsys):
    assert_refused(["convert", tmp_path / "nope.pt", tmp_path / "out.safetensors"], capsys, "nope.pt: no such file")


# --------------------------------------------------------------------------- pickles that carry code
class _Payload:
    """Unpickling this runs os.system: it creates the marker file if anything executes it."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("kind", ["pt-zip", "pt-legacy-pickle", "pdparams", "pt-inside-state-dict"])
def test_pickle_with_code_is_refused_not_run(kind, tmp_path, weights, capsys):
    if kind.startswith("pt"):
        _torch()  # reading a .pt file needs torch; without it the refusal would be "needs PyTorch"
    marker = tmp_path / "PWNED"
    evil = _Payload(marker)
    if kind == "pdparams":
        src = tmp_path / "evil.pdparams"
        src.write_bytes(pickle.dumps({"conv1.weight": evil}, protocol=4))
    elif kind == "pt-legacy-pickle":
        src = tmp_path / "evil.pt"
        src.write_bytes(pickle.dumps(evil, protocol=2))
    else:
        torch = _torch()
        src = tmp_path / "evil.pt"
        obj = evil if kind == "pt-zip" else {**{k: torch.from_numpy(v) for k, v in weights.items()}, "extra": evil}
        torch.save(obj, src)
    assert not marker.exists()
    assert_refused(["convert", src, tmp_path / "out.safetensors"], capsys, "refused", str(src))
    assert not marker.exists(), "the pickle's code was executed"


# --------------------------------------------------------------------------- naming schemes
def _kuangliu_names(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """pytorch-cifar's names, written out by hand: shortcut.0/1 for downsample, linear for fc."""
    out = {}
    for k, v in weights.items():
        k = re.sub(r"\.downsample\.", ".shortcut.", k)
        out["module." + re.sub(r"^fc\.", "linear.", k)] = v
    return out


def test_names_override(tmp_path, weights, capsys):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    src = tmp_path / "kuangliu.safetensors"
    safetensors_numpy.save_file(_kuangliu_names(weights), str(src))  # written by the reference library
    assert_refused(
        ["convert", src, tmp_path / "a.safetensors", "--names", "canonical"],
        capsys,
        "do not follow the 'canonical' scheme for resnet18",
        "module.layer2.0.shortcut.0.weight",
    )
    rc, out, _ = run(["convert", src, tmp_path / "b.safetensors", "--names", "pytorch-cifar"], capsys)
    assert rc == 0 and "scheme pytorch-cifar:" in out
    rc, out, _ = run(["convert", src, tmp_path / "c.safetensors"], capsys)  # detected without help
    assert rc == 0 and "scheme pytorch-cifar:" in out
    got = porting.read(tmp_path / "c.safetensors").weights
    assert all(got[k].tobytes() == weights[k].tobytes() for k in weights)


@pytest.mark.parametrize(
    "model, kwargs",
    [
        ("resnet18", {"stem": "imagenet", "num_classes": 1000}),
        ("resnet18", {"in_channels": 1, "num_classes": 7, "shortcut_bias": True}),
        ("resnet18", {"conv_bias": True}),
        ("resnet18", {"stem": "imagenet", "shortcut_bn": False}),
        (
            "resnet18",
            {"stem": "imagenet", "in_channels": 1, "conv_bias": True, "shortcut_bias": True, "shortcut_bn": False},
        ),
        ("minimodel", {"num_classes": 100}),
    ],
)
def test_config_is_inferred_from_names_and_shapes(model, kwargs, tmp_path):
    cfg = spec.make_config(model, **kwargs)
    src = tmp_path / "bare.safetensors"
    porting.canonical.save_file(src, random_weights(cfg, seed=2))  # no metadata: nothing states the config
    assert porting.read(src).config == cfg


def test_each_combination_of_name_options_has_its_own_names():
    """Detection tells the combinations apart only because each gives a different set of tensors."""
    skeletons = spec.ResNet18Config.skeletons()
    assert len(skeletons) == 2 ** len(spec.ResNet18Config.name_options) == 8
    assert len({frozenset(p.name for p in c.param_specs()) for c in skeletons}) == len(skeletons)
    assert skeletons[0] == spec.ResNet18Config()  # the plain network is the first candidate
    assert spec.MiniModelConfig.skeletons() == [spec.MiniModelConfig()]


def test_a_stem_of_no_known_kind(tmp_path, weights, capsys):
    w = dict(weights, **{"conv1.weight": np.zeros((64, 3, 5, 5), np.float32)})
    src = tmp_path / "stem5.safetensors"
    porting.canonical.save_file(src, w)
    assert_refused(
        ["convert", src, tmp_path / "out.safetensors"],
        capsys,
        "conv1 has a 5x5 kernel, which matches no stem: expected 3x3 (cifar), 7x7 (imagenet)",
    )


def test_model_option(canonical, tmp_path, capsys):
    assert_refused(
        ["convert", canonical, tmp_path / "out.safetensors", "--model", "minimodel"],
        capsys,
        "holds a resnet18, not a minimodel",
    )


# --------------------------------------------------------------------------- the file format
def test_safetensors_interoperate_with_the_reference_library(canonical, tmp_path, weights):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    theirs = safetensors_numpy.load_file(str(canonical))
    # the library stores tensors sorted by dtype and name, so compare by name, not by order
    assert sorted(theirs) == sorted(weights) and all(theirs[k].tobytes() == weights[k].tobytes() for k in weights)
    with open(canonical, "rb") as f:  # the metadata, as the reference library sees it
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n))["__metadata__"]
    assert meta["model"] == "resnet18" and json.loads(meta["config"]) == CFG.to_dict()
    assert meta["format_version"] == str(porting.canonical.FORMAT_VERSION) and meta["framework"] == "torch"
    mixed = {
        "f16": np.arange(6, dtype=np.float16).reshape(2, 3),
        "i64": np.arange(4),
        "u8": np.arange(3, dtype=np.uint8),
    }
    safetensors_numpy.save_file(mixed, str(tmp_path / "mixed.safetensors"), metadata={"k": "v"})
    got, meta = porting.canonical.load_file(tmp_path / "mixed.safetensors")
    assert meta == {"k": "v"} and all(got[k].dtype == v.dtype and (got[k] == v).all() for k, v in mixed.items())


# --------------------------------------------------------------------------- imports and exit codes
def test_conversion_imports_only_the_frameworks_it_needs(canonical, tmp_path, weights):
    _torch()  # the last step writes a .pt file
    pdparams = tmp_path / "m.pdparams"
    with open(pdparams, "wb") as f:  # paddle.save's layout, written without Paddle
        pickle.dump(
            {
                k.replace("running_mean", "_mean").replace("running_var", "_variance"): (
                    v.T.copy() if k == "fc.weight" else v
                )
                for k, v in weights.items()
            },
            f,
            protocol=4,
        )
    code = f"""
import sys
from resnet_core import porting
FW = ("torch", "tensorflow", "keras", "paddle", "jax")
porting.convert({str(canonical)!r}, {str(tmp_path / "a.safetensors")!r})
assert not [m for m in FW if m in sys.modules], ("canonical", [m for m in FW if m in sys.modules])
porting.convert({str(pdparams)!r}, {str(tmp_path / "b.safetensors")!r})
assert not [m for m in FW if m in sys.modules], ("pdparams", [m for m in FW if m in sys.modules])
porting.convert({str(tmp_path / "b.safetensors")!r}, {str(tmp_path / "c.pt")!r})
assert [m for m in FW if m in sys.modules] == ["torch"], [m for m in FW if m in sys.modules]
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    src = porting.read(tmp_path / "c.pt")
    assert all(src.weights[k].tobytes() == weights[k].tobytes() for k in weights)


def test_console_script_exit_codes(canonical, tmp_path):
    exe = pathlib.Path(sys.executable).with_name("resnet-parity")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "resnet_core.cli"]
    dst = tmp_path / "out.safetensors"
    ok = subprocess.run([*cmd, "convert", str(canonical), str(dst)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "model resnet18" in ok.stdout and f"wrote {dst}" in ok.stdout
    again = subprocess.run([*cmd, "convert", str(canonical), str(dst)], capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "already exists" in again.stderr


# --------------------------------------------------------------------------- inspect
def test_inspect_prints_what_the_file_holds(canonical, capsys):
    rc, out, _ = run(["inspect", canonical], capsys)
    assert rc == 0
    assert "model   resnet18" in out
    assert '"num_classes": 10, "stem": "cifar", "in_channels": 3, "shortcut_bias": false' in out
    assert re.search(r"layer4\.1\.conv2\.weight\s+\(512, 512, 3, 3\)\s+float32", out)
    assert "11,173,962 trainable + 9,600 BN statistics = 11,183,562" in out
    assert "NaN/Inf none" in out


def test_inspect_reports_nan_and_inf(tmp_path, weights, capsys):
    w = {k: v.copy() for k, v in weights.items()}
    w["bn1.running_var"][:2] = np.nan
    w["fc.bias"][0] = np.inf
    src = _edited(tmp_path, w, lambda _: None)
    rc, out, _ = run(["inspect", src], capsys)
    assert rc == 1
    assert "NaN/Inf 2 tensor(s): bn1.running_var (2 NaN); fc.bias (1 Inf)" in out


def test_inspect_unknown_architecture_lists_tensors_then_fails(tmp_path, capsys):
    src = tmp_path / "vgg.safetensors"
    porting.canonical.save_file(
        src, {"features.0.weight": np.zeros((64, 3, 3, 3), np.float32), "classifier.6.bias": np.zeros(10, np.float32)}
    )
    rc, out, err = run(["inspect", src], capsys)
    assert rc == 2 and err.count("\n") == 1 and "no known naming scheme fits the 2 tensors" in err
    assert re.search(r"features\.0\.weight\s+\(64, 3, 3, 3\)\s+float32", out)


def test_bf16_tensors_are_widened_exactly(tmp_path):
    """A BF16 file written by the reference library (its torch API: its numpy API has no bfloat16) reads as F32."""
    torch = _torch()
    safetensors_torch = pytest.importorskip("safetensors.torch")
    values = torch.randn(3, 5, generator=torch.Generator().manual_seed(4)).to(torch.bfloat16)
    src = tmp_path / "bf16.safetensors"
    safetensors_torch.save_file({"w": values, "b": torch.ones(2)}, str(src))
    got, _ = porting.canonical.load_file(src)
    assert got["w"].dtype == np.float32 and np.array_equal(got["w"], values.float().numpy())
    assert np.array_equal(got["b"], np.ones(2, np.float32))
