"""The raw readers: any supported file -> its tensors exactly as stored (:class:`RawFile`).

No mapping, no validation against a model: that is :mod:`.pipeline`'s job, so
``inspect`` can show a file that fits no model. Each reader imports only what its
format needs: canonical ``.safetensors`` is read with numpy, ``.pdparams`` with a
pickle that unpickles numpy arrays and nothing else (never Paddle, whose
``paddle.load`` is a plain ``pickle.load``), the Keras files with h5py, and
``.pt``/``.pth`` with ``torch.load(weights_only=True)``. A pickle that asks to run
code is refused, never run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import re
import struct
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .. import spec
from . import canonical, paddle_inference, torchscript
from .formats import ConvertError, Format, format_of


@dataclass
class RawFile:
    """A file's tensors exactly as stored (its names, its layout, its dtypes)."""

    format: Format
    tensors: dict[str, np.ndarray]
    metadata: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    config: spec.Config | None = None  # a config the file states itself
    #: name -> dtype as stored, where it is not the array's: bfloat16 (numpy has none) is widened to float32
    stored_dtypes: dict[str, str] = field(default_factory=dict)


def _corrupted(path: str, fmt: Format, e: BaseException) -> ConvertError:
    msg = " ".join(str(e).split()) or type(e).__name__  # whole: a message cut mid-word helps no one
    return ConvertError(f"cannot read {path} as a {fmt.label}: truncated or corrupted file ({type(e).__name__}: {msg})")


def _read_safetensors(path: str, fmt: Format) -> RawFile:
    tensors, meta, stored = canonical.load(path)
    cfg = canonical.config_from_metadata(meta, path) if canonical.is_canonical(meta) else None
    return RawFile(fmt, tensors, meta, config=cfg, stored_dtypes=stored)


# "net": pytorch-cifar's train script; "state_dict": timm's train.py and Lightning; "model": torchvision's
# references/classification train.py.
_STATE_DICT_KEYS = ("net", "state_dict", "model_state_dict", "model")
# The averaged weights: timm's --model-ema (state_dict_ema), torchvision's --model-ema (model_ema).
_EMA_KEYS = ("state_dict_ema", "model_ema")


def _unwrap_checkpoint(
    obj: Any, is_tensor: Callable[[Any], bool], path: str, fmt: Format, ema: bool = False
) -> tuple[Mapping[str, Any], list[str]]:
    """A state dict, or the state dict inside a training checkpoint dict (``ema``: its averaged weights)."""
    if isinstance(obj, Mapping) and obj and all(is_tensor(v) for v in obj.values()):
        if ema:
            raise ConvertError(
                f"{path}: --ema asks for a checkpoint's averaged weights; this file is a plain state dict"
            )
        return obj, []
    if isinstance(obj, Mapping):
        has_ema = [k for k in _EMA_KEYS if isinstance(obj.get(k), Mapping) and obj[k]]
        if ema and not has_ema:
            raise ConvertError(
                f"{path}: --ema asks for averaged weights ({' / '.join(_EMA_KEYS)}); "
                f"the checkpoint holds {list(obj)[:12]}"
            )
        for key in has_ema if ema else _STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(is_tensor(v) for v in inner.values()):
                extra = ", ".join(f"{k}={v}" for k, v in obj.items() if k != key and isinstance(v, (int, float, str)))
                notes = [f"state dict from the checkpoint's {key!r} entry" + (f" ({extra})" if extra else "")]
                if has_ema and not ema:
                    notes.append(f"the checkpoint also holds averaged weights ({has_ema[0]!r}): --ema reads those")
                return inner, notes
    what = f"a dict with keys {list(obj)[:8]}" if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
    raise ConvertError(
        f"{path}: expected a {fmt.label} (name -> tensor) or a checkpoint dict holding one under "
        f"{' / '.join(repr(k) for k in _STATE_DICT_KEYS)}; received {what}"
    )


class _AttributeDict(dict):
    """Stand-in for Lightning's ``AttributeDict`` (a plain dict subclass) in ``hyper_parameters``.

    torch's weights-only unpickler fills only plain dicts (SETITEMS), so "creating" one
    returns a plain dict: the hyper-parameters arrive as the dict they are.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> dict:  # type: ignore[misc]
        return {}


def _checkpoint_globals() -> list:
    """The harmless globals training checkpoints carry, allowed by name (weights_only stays on).

    torchvision's references and timm's train.py save their ``argparse.Namespace``
    under ``args``; Lightning saves ``hyper_parameters`` as an ``AttributeDict``
    (unpickled here into a plain dict subclass: Lightning need not be installed).
    """
    names = (
        "lightning.fabric.utilities.data.AttributeDict",
        "lightning_fabric.utilities.data.AttributeDict",
        "pytorch_lightning.utilities.parsing.AttributeDict",
    )
    return [argparse.Namespace, *((_AttributeDict, n) for n in names)]


def _read_torchscript(path: str, fmt: Format) -> RawFile:
    try:
        tensors = torchscript.read_tensors(path)
    except torchscript.TorchScriptError as e:
        raise ConvertError(
            f"{path} is a TorchScript archive (torch.jit.save) whose module tree could not be read without "
            f"running it ({e}); nothing was executed. If you trust the file: "
            f"torch.save(torch.jit.load(path).state_dict(), 'weights.pth') and convert that"
        ) from None
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError, pickle.UnpicklingError) as e:
        raise _corrupted(path, fmt, e) from None
    return RawFile(fmt, tensors, notes=["parameters of a TorchScript archive (its program was not run)"])


def _read_torch(path: str, fmt: Format, ema: bool = False) -> RawFile:
    if torchscript.is_torchscript(path):
        return _read_torchscript(path, fmt)
    try:
        import torch
    except ImportError:
        raise ImportError(f"reading {fmt.label} files needs PyTorch: pip install 'resnet-parity[torch]'") from None
    try:
        # weights_only: tensors and plain containers only; a pickle that calls code is refused, never run.
        with warnings.catch_warnings(), torch.serialization.safe_globals(_checkpoint_globals()):
            warnings.simplefilter("ignore", UserWarning)  # torch's note on legacy pickle protocols
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = " ".join(str(e).split())
        # torch's message: advice, then "WeightsUnpickler error: <what was refused>", then a link.
        detail = text.split("WeightsUnpickler error:", 1)[-1].split(" Check the documentation")[0].strip()
        raise ConvertError(
            f"refused {path}: a {fmt.label} holds only tensors and plain containers, but this pickle "
            f"asks for more; nothing was executed (torch.load weights_only: {detail})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, IndexError) as e:
        raise _corrupted(path, fmt, e) from None
    sd, notes = _unwrap_checkpoint(obj, lambda v: isinstance(v, torch.Tensor), path, fmt, ema)
    tensors, stored = {}, {}
    for k, v in sd.items():
        v = v.detach()
        if v.dtype == torch.bfloat16:  # numpy has no bfloat16: widened exactly, the stored dtype kept
            stored[str(k)] = "bfloat16"
        tensors[str(k)] = (v.float() if v.dtype == torch.bfloat16 else v).numpy()
    return RawFile(fmt, tensors, notes=notes, stored_dtypes=stored)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays in plain dicts, and nothing else: any other global is refused, not called."""

    ALLOWED = frozenset(
        {
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("collections", "OrderedDict"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise _UnsafePickle(f"{module}.{name}")


class _UnsafePickle(Exception):
    pass


# What unpickling a truncated or garbled file raises (it never gets to run code: find_class refuses first).
_BROKEN_PICKLE = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError
)  # fmt: skip


def _read_paddle(path: str, fmt: Format) -> RawFile:
    # paddle.save pickles a dict of numpy arrays; reading it needs no Paddle, and unlike
    # paddle.load (plain pickle.load) it never runs code a malicious file carries.
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f).load()
    except _UnsafePickle as e:
        raise ConvertError(
            f"refused {path}: a {fmt.label} holds only numpy arrays, but this pickle asks to call {e}; "
            f"nothing was executed"
        ) from None
    except _BROKEN_PICKLE as e:
        raise _corrupted(path, fmt, e) from None
    if isinstance(obj, Mapping):
        obj = {k: v for k, v in obj.items() if k != "StructuredToParameterName@@"}
    sd, notes = _unwrap_checkpoint(obj, lambda v: isinstance(v, np.ndarray) and v.dtype != object, path, fmt)
    return RawFile(fmt, {str(k): v for k, v in sd.items()}, notes=notes)


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading Keras files needs h5py: pip install 'resnet-parity[keras]'") from None
    return h5py


# Variables of each Keras layer class, in the order Keras saves them (vars/0, vars/1, ...).
KERAS_VARIABLES = {
    "conv2d": ("kernel", "bias"),
    "dense": ("kernel", "bias"),
    "batch_normalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}


def _keras3_weights(h5file) -> dict[str, np.ndarray]:
    """``layer/variable -> array`` from Keras 3's weights layout (``layers/<group>/vars/<i>``).

    The group is named after the layer's class; the layer's own name is the
    ``name`` attribute of its ``vars`` group.
    """
    out: dict[str, np.ndarray] = {}

    def walk(group) -> None:
        layers = group.get("layers")
        if layers is None:
            return
        for gname in layers:
            g = layers[gname]
            v = g.get("vars")
            if v is not None and len(v):
                layer = v.attrs.get("name", gname)
                layer = layer.decode() if isinstance(layer, bytes) else str(layer)
                slots = KERAS_VARIABLES.get(re.sub(r"_\d+$", "", gname), ())
                for i in sorted(v, key=int):
                    out[f"{layer}/{slots[int(i)] if int(i) < len(slots) else i}"] = v[i][()]
            walk(g)  # nested models

    walk(h5file)
    return out


def _open_h5(path_or_file, path: str, fmt: Format):
    h5py = _h5py()
    try:
        return h5py.File(path_or_file, "r")
    except (OSError, ValueError) as e:
        raise _corrupted(path, fmt, e) from None


def _read_h5_datasets(fn, path: str, fmt: Format) -> dict[str, np.ndarray]:
    try:
        return fn()
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise _corrupted(path, fmt, e) from None


def _read_keras_weights(path: str, fmt: Format) -> RawFile:
    with _open_h5(path, path, fmt) as f:
        if "layers" not in f:
            raise ConvertError(
                f"{path}: expected a Keras 3 weights file (model.save_weights), found HDF5 groups {list(f)[:6]}"
            )
        tensors = _read_h5_datasets(lambda: _keras3_weights(f), path, fmt)
    return RawFile(fmt, tensors)


def _read_keras_archive(path: str, fmt: Format) -> RawFile:
    try:
        with zipfile.ZipFile(path) as z:
            weights = z.read("model.weights.h5")
            config = json.loads(z.read("config.json"))
    except (zipfile.BadZipFile, KeyError, OSError, json.JSONDecodeError, EOFError, ValueError) as e:
        raise _corrupted(path, fmt, e) from None
    with _open_h5(io.BytesIO(weights), path, fmt) as f:
        tensors = _read_h5_datasets(lambda: _keras3_weights(f), path, fmt)
    cfg, notes = None, []
    registered = str(config.get("registered_name", "")) if isinstance(config, dict) else ""
    model = {"resnet_keras>ResNet18": "resnet18", "resnet_keras>MiniModel": "minimodel"}.get(registered)
    if model:  # this project's model: its config (softmax included) is stated in the archive
        options = {f.name for f in fields(spec.CONFIGS[model])}  # Keras adds name and trainable
        cfg = spec.make_config(model, **{k: v for k, v in config.get("config", {}).items() if k in options})
        notes.append(f"config from the archive's {registered}")
    return RawFile(fmt, tensors, notes=notes, config=cfg)


def _read_keras_legacy(path: str, fmt: Format) -> RawFile:
    def read(f) -> dict[str, np.ndarray]:
        root = f.get("model_weights", f)
        if "layer_names" not in root.attrs:
            raise ConvertError(
                f"{path}: expected a legacy Keras HDF5 file (with layer_names), found groups {list(f)[:6]}"
            )
        out = {}
        for layer in root.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else str(layer)
            g = root[layer]
            for w in g.attrs.get("weight_names", []):
                w = w.decode() if isinstance(w, bytes) else str(w)
                var = w.split("/")[-1].split(":")[0]  # Keras 2 wrote "conv2d/kernel:0"
                out[f"{layer}/{var}"] = g[w][()]
        return out

    with _open_h5(path, path, fmt) as f:
        tensors = _read_h5_datasets(lambda: read(f), path, fmt)
    return RawFile(fmt, tensors)


_STATE_DICT_ADVICE = (
    "if you trust the export: layer = paddle.jit.load(prefix); paddle.save(layer.state_dict(), 'weights.pdparams'), "
    "then convert the .pdparams file"
)


def _read_paddle_inference(path: str, fmt: Format) -> RawFile:
    """A ``paddle.jit.save`` export: parameters parsed with numpy, named by the program beside it (never run)."""
    try:
        named, _ = paddle_inference.read_export(path)
    except paddle_inference.PaddleInferenceError as e:
        msg = f"cannot read {path} as a {fmt.label}: {e}; nothing was executed. {_STATE_DICT_ADVICE}"
        raise ConvertError(msg) from None
    except (OSError, struct.error, ValueError) as e:
        raise _corrupted(path, fmt, e) from None
    return RawFile(fmt, named.tensors, notes=named.notes, config=named.config, stored_dtypes=named.stored_dtypes)


_READERS: dict[str, Callable[[str, Format], RawFile]] = {
    "safetensors": _read_safetensors,
    "torch": _read_torch,
    "torch-checkpoint": _read_torch,
    "paddle-inference": _read_paddle_inference,
    "paddle": _read_paddle,
    "keras-weights": _read_keras_weights,
    "keras": _read_keras_archive,
    "keras-h5": _read_keras_legacy,
}


def read_raw(path: str | os.PathLike, *, ema: bool = False) -> RawFile:
    """The tensors of any supported file, as stored (no framework needed except torch for .pt).

    ``ema``: from a training checkpoint, its averaged weights (timm ``state_dict_ema``,
    torchvision ``model_ema``) instead of the trained ones.
    """
    path = os.fspath(path)
    fmt = format_of(path)
    if fmt.key == "hf":
        from . import hf  # a folder: config.json + an ordinary .safetensors / .bin beside it

        weights, config = hf.open_folder(path)
        raw = hf.as_folder(read_raw(weights), weights, config)
    elif os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory; expected a weights file ({fmt.label})")
    elif not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    elif fmt.framework == "torch":
        raw = _read_torch(path, fmt, ema)
    elif ema:
        raise ConvertError(f"--ema reads a PyTorch training checkpoint; {path} is a {fmt.label}")
    else:
        raw = _READERS[fmt.key](path, fmt)
    bad = [k for k, v in raw.tensors.items() if not isinstance(v, np.ndarray) or v.dtype.kind not in "fiub"]
    if bad:
        raise ConvertError(f"{path}: expected numeric tensors; not so for {bad[:5]}")
    return raw
