"""``resnet-parity convert``: port a weights file between formats and frameworks.

Reading goes file -> tensors as stored -> naming scheme (:mod:`resnet_core.schemes`)
-> canonical names and layout -> config (stated by the file or inferred) -> strict
validation. Writing goes canonical -> the target format, through a temp file and a
rename. Only the frameworks that the two formats need are imported: canonical
``.safetensors`` needs none, ``.pdparams`` and the Keras HDF5 files are read with
pickle (restricted to numpy arrays) and h5py, ``.pt``/``.pth`` with
``torch.load(weights_only=True)``; writing a native format needs its framework.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from . import checkpoint, frameworks, schemes, spec
from .weights import check_weights


class ConvertError(ValueError):
    """A file cannot be read or written as asked; the message says what was expected and received."""


# --------------------------------------------------------------------------- formats
@dataclass(frozen=True)
class Format:
    key: str
    suffixes: tuple[str, ...]
    framework: str | None  # the framework that writes it; None: canonical, no framework
    label: str
    writable: bool = True


FORMATS: tuple[Format, ...] = (
    Format("safetensors", (".safetensors",), None, "canonical safetensors checkpoint"),
    Format("torch", (".pt", ".pth"), "torch", "PyTorch state dict"),
    Format("keras-weights", (".weights.h5",), "keras", "Keras weights file"),
    Format("keras", (".keras",), "keras", "Keras model archive"),
    Format("paddle", (".pdparams",), "paddle", "Paddle state dict"),
    # What the Keras tutorial's own code writes (model.save("cifar10model.h5")).
    Format("keras-h5", (".h5", ".hdf5"), "keras", "legacy Keras HDF5 model", writable=False),
)


def _suffix_list(writable: bool) -> str:
    return ", ".join(s for f in FORMATS if f.writable or not writable for s in f.suffixes)


def format_of(path: str | os.PathLike, *, writing: bool = False) -> Format:
    """The format named by ``path``'s extension (the longest suffix that matches)."""
    name = os.path.basename(os.fspath(path)).lower()
    hits = [(len(s), f) for f in FORMATS for s in f.suffixes if name.endswith(s)]
    if not hits:
        ext = "".join(re.findall(r"\.[^.]*$", name)) or "no extension"
        raise ConvertError(f"unsupported extension {ext!r} for {os.fspath(path)}: expected one of {_suffix_list(writing)}")
    fmt = max(hits, key=lambda h: h[0])[1]
    if writing and not fmt.writable:
        raise ConvertError(f"{os.fspath(path)}: {fmt.label} files are read only; write one of {_suffix_list(True)}")
    return fmt


# --------------------------------------------------------------------------- raw readers
@dataclass
class RawFile:
    """A file's tensors exactly as stored (its names, its layout, its dtypes)."""

    format: Format
    tensors: dict[str, np.ndarray]
    metadata: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    config: spec.Config | None = None  # a config the file states itself


def _corrupted(path: str, fmt: Format, e: BaseException) -> ConvertError:
    msg = " ".join(str(e).split())[:300] or type(e).__name__
    return ConvertError(f"cannot read {path} as a {fmt.label}: truncated or corrupted file ({type(e).__name__}: {msg})")


def _read_safetensors(path: str, fmt: Format) -> RawFile:
    tensors, meta = checkpoint.load_file(path)
    cfg = checkpoint.config_from_metadata(meta, path) if checkpoint.is_canonical(meta) else None
    return RawFile(fmt, tensors, meta, config=cfg)


_STATE_DICT_KEYS = ("net", "state_dict", "model_state_dict", "model")  # "net": pytorch-cifar's train script


def _unwrap_checkpoint(obj: Any, is_tensor: Callable[[Any], bool], path: str, fmt: Format) -> tuple[Mapping[str, Any], list[str]]:
    """A state dict, or the state dict inside a training checkpoint dict like pytorch-cifar's."""
    if isinstance(obj, Mapping) and obj and all(is_tensor(v) for v in obj.values()):
        return obj, []
    if isinstance(obj, Mapping):
        for key in _STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(is_tensor(v) for v in inner.values()):
                extra = ", ".join(f"{k}={v}" for k, v in obj.items() if k != key and isinstance(v, (int, float, str)))
                return inner, [f"state dict from the checkpoint's {key!r} entry" + (f" ({extra})" if extra else "")]
    what = f"a dict with keys {list(obj)[:8]}" if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
    raise ConvertError(f"{path}: expected a {fmt.label} (name -> tensor) or a checkpoint dict holding one under "
                       f"{' / '.join(repr(k) for k in _STATE_DICT_KEYS)}; received {what}")


def _read_torch(path: str, fmt: Format) -> RawFile:
    try:
        import torch
    except ImportError:
        raise ImportError(f"reading {fmt.label} files needs PyTorch: pip install 'resnet-parity[torch]'") from None
    try:
        # weights_only: tensors and plain containers only; a pickle that calls code is refused, never run.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's note on legacy pickle protocols
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = str(e).strip().splitlines()
        detail = next((ln.strip() for ln in lines if "GLOBAL" in ln or "Unsupported" in ln), lines[0] if lines else "")
        raise ConvertError(f"refused {path}: a {fmt.label} holds only tensors and plain containers, but this pickle "
                           f"asks for more; nothing was executed (torch.load weights_only: {detail[:200]})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, IndexError) as e:
        raise _corrupted(path, fmt, e) from None
    sd, notes = _unwrap_checkpoint(obj, lambda v: isinstance(v, torch.Tensor), path, fmt)
    tensors = {}
    for k, v in sd.items():
        v = v.detach()
        tensors[str(k)] = (v.float() if v.dtype == torch.bfloat16 else v).numpy()
    return RawFile(fmt, tensors, notes=notes)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays in plain dicts, and nothing else: any other global is refused, not called."""

    ALLOWED = {
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise _UnsafePickle(f"{module}.{name}")


class _UnsafePickle(Exception):
    pass


def _read_paddle(path: str, fmt: Format) -> RawFile:
    # paddle.save pickles a dict of numpy arrays; reading it needs no Paddle, and unlike
    # paddle.load (plain pickle.load) it never runs code a malicious file carries.
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f).load()
    except _UnsafePickle as e:
        raise ConvertError(f"refused {path}: a {fmt.label} holds only numpy arrays, but this pickle asks to call {e}; "
                           f"nothing was executed") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as e:
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
            raise ConvertError(f"{path}: expected a Keras 3 weights file (model.save_weights), found HDF5 groups {list(f)[:6]}")
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
        fields = spec.CONFIGS[model].__dataclass_fields__
        cfg = spec.make_config(model, **{k: v for k, v in config.get("config", {}).items() if k in fields})
        notes.append(f"config from the archive's {registered}")
    return RawFile(fmt, tensors, notes=notes, config=cfg)


def _read_keras_legacy(path: str, fmt: Format) -> RawFile:
    def read(f) -> dict[str, np.ndarray]:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in root.attrs:
            raise ConvertError(f"{path}: expected a legacy Keras HDF5 file (with layer_names), found groups {list(f)[:6]}")
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


_READERS = {
    "safetensors": _read_safetensors, "torch": _read_torch, "paddle": _read_paddle,
    "keras-weights": _read_keras_weights, "keras": _read_keras_archive, "keras-h5": _read_keras_legacy,
}


def read_raw(path: str | os.PathLike) -> RawFile:
    """The tensors of any supported file, as stored (no framework needed except torch for .pt)."""
    path = os.fspath(path)
    fmt = format_of(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    raw = _READERS[fmt.key](path, fmt)
    bad = [k for k, v in raw.tensors.items() if not isinstance(v, np.ndarray) or v.dtype.kind not in "fiub"]
    if bad:
        raise ConvertError(f"{path}: expected numeric tensors; not so for {bad[:5]}")
    return raw


# --------------------------------------------------------------------------- resolved source
@dataclass
class Source:
    """A file read, mapped and validated: a config and canonical float32 weights."""

    path: str
    raw: RawFile
    config: spec.Config
    weights: dict[str, np.ndarray]
    scheme: str
    mapping: dict[str, str] = field(default_factory=dict)  # file name -> canonical name
    notes: list[str] = field(default_factory=list)

    @property
    def model(self) -> str:
        return spec.model_name(self.config)

    @property
    def framework(self) -> str:
        """Where the weights came from: as stated by a canonical file, else the format's framework."""
        return self.raw.metadata.get("framework") or self.raw.format.framework or "unknown"


def resolve(path: str, raw: RawFile, *, names: str | None = None, model: str | None = None,
            overrides: Mapping[str, Any] | None = None, allow_nonfinite: bool = False) -> Source:
    """Map ``raw``'s tensors to canonical names and layout, settle the config and validate."""
    overrides = dict(overrides or {})
    if model is not None and model not in spec.MODELS:
        raise ConvertError(f"unknown model {model!r}: expected one of {list(spec.MODELS)}")
    stated = raw.config
    if stated is not None and model and spec.model_name(stated) != model:
        raise ConvertError(f"{path} holds a {spec.model_name(stated)}, not a {model} as asked")
    if names is None and checkpoint.is_canonical(raw.metadata):
        names = "canonical"  # the file says so
    try:
        m = schemes.detect(list(raw.tensors), scheme=names, model=model or (spec.model_name(stated) if stated else None))
    except schemes.SchemeError as e:
        raise ConvertError(f"{path}: {e}") from None
    weights = schemes.to_canonical(m, raw.tensors)
    if stated is not None:
        cfg = spec.make_config(spec.model_name(stated), **{**stated.to_dict(), **overrides})
    else:
        cfg = schemes.infer_config(m.skeleton, weights, overrides)
    try:
        checked = check_weights(cfg, weights, allow_nonfinite=allow_nonfinite)
    except ValueError as e:
        raise ConvertError(f"{path}: {e}") from None
    notes = list(raw.notes) + m.notes
    if m.ignored:
        kinds = sorted({re.sub(r"^.*[./]", "", k) for k in m.ignored})
        notes.append(f"ignored {len(m.ignored)} bookkeeping entries ({', '.join(kinds)})")
    return Source(path, raw, cfg, checked, m.scheme.name, {k: p.name for k, p in m.mapping.items()}, notes)


def read(path: str | os.PathLike, *, names: str | None = None, model: str | None = None,
         overrides: Mapping[str, Any] | None = None, allow_nonfinite: bool = False) -> Source:
    """Read any supported weights file into a config and canonical weights.

    Args:
        path: a ``.safetensors``, ``.pt``/``.pth``, ``.weights.h5``, ``.keras``, ``.h5`` or ``.pdparams`` file.
        names: force a naming scheme (see :data:`resnet_core.schemes.SCHEMES`) instead of detecting it.
        model: expect this model (``resnet18`` or ``minimodel``).
        overrides: config fields that win over what the file states or its shapes imply.
        allow_nonfinite: accept NaN/Inf values (``inspect`` reports them instead).
    """
    path = os.fspath(path)
    return resolve(path, read_raw(path), names=names, model=model, overrides=overrides, allow_nonfinite=allow_nonfinite)


# --------------------------------------------------------------------------- writing
def write(path: str | os.PathLike, cfg: spec.Config, weights: Mapping[str, np.ndarray], *,
          framework: str = "unknown", overwrite: bool = True) -> Format:
    """Write canonical ``weights`` to ``path`` in the format its extension names, atomically.

    A native format is written by building the framework's model, loading the
    weights strictly and saving it with the framework's own API, so the file
    loads back with that framework's plain calls.
    """
    path = os.fspath(path)
    fmt = format_of(path, writing=True)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} already exists: refusing to overwrite it (use --force)")
    checked = check_weights(cfg, weights)  # before any framework import or file creation
    if fmt.framework is None:
        checkpoint.write(path, cfg, checked, framework, overwrite=overwrite)
        return fmt
    fw = frameworks.get(fmt.framework)
    net = fw.build(spec.model_name(cfg), **cfg.to_dict())
    fw.import_weights(net, checked)
    fw.save(net, path, overwrite=overwrite)
    return fmt


def convert(src: str | os.PathLike, dst: str | os.PathLike, *, names: str | None = None, model: str | None = None,
            overwrite: bool = False) -> tuple[Source, Format]:
    """Port ``src`` to ``dst``; formats from the extensions. Nothing is written unless all is well."""
    src, dst = os.fspath(src), os.fspath(dst)
    dst_fmt = format_of(dst, writing=True)  # fail on a bad target before reading anything
    if not overwrite and os.path.exists(dst):
        raise FileExistsError(f"{dst} already exists: refusing to overwrite it (use --force)")
    if os.path.exists(src) and os.path.exists(dst) and os.path.samefile(src, dst):
        raise ConvertError(f"source and destination are the same file: {src}")
    source = read(src, names=names, model=model)
    write(dst, source.config, source.weights, framework=source.framework, overwrite=overwrite)
    return source, dst_fmt


# --------------------------------------------------------------------------- CLI
def describe_source(s: Source) -> list[str]:
    c = spec.counts(s.config)
    lines = [
        f"read  {s.path} ({s.raw.format.label}, from {s.framework})",
        f"      model {s.model} {json.dumps(s.config.to_dict())}",
        f"      {len(s.weights)} tensors, {c.trainable:,} parameters + {c.bn_statistics:,} BN statistics",
        f"      scheme {s.scheme}: {schemes.get(s.scheme).description}",
    ]
    lines += [f"      {n}" for n in s.notes]
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", metavar="SRC", help=f"weights file to read ({_suffix_list(False)})")
    p.add_argument("dst", metavar="DST", help=f"file to write ({_suffix_list(True)}); format from the extension")
    p.add_argument("--model", choices=list(spec.MODELS), help="expect this model (default: detected)")
    p.add_argument("--names", choices=schemes.scheme_names(), metavar="SCHEME",
                   help=f"naming scheme of SRC, instead of detecting it: {', '.join(schemes.scheme_names())}")
    p.add_argument("--force", action="store_true", help="overwrite DST if it exists")


def run(args: argparse.Namespace) -> int:
    source, fmt = convert(args.src, args.dst, names=args.names, model=args.model, overwrite=args.force)
    print("\n".join(describe_source(source)))
    print(f"wrote {args.dst} ({fmt.label}): {len(source.weights)} tensors")
    return 0


# --------------------------------------------------------------------------- framework io helpers
def save_model(framework: str, path: str | os.PathLike, cfg: spec.Config, export: Callable[[], Mapping[str, np.ndarray]],
               native: Mapping[str, Callable[[str], None]], *, overwrite: bool = True) -> Format:
    """Save one framework's model: canonical ``.safetensors``, or one of its ``native`` format writers.

    ``native`` maps a format key to ``writer(tmp_path)``; the file is written to a
    temp path and renamed into place.
    """
    path = os.fspath(path)
    fmt = format_of(path, writing=True)
    if fmt.framework is None:
        checkpoint.write(path, cfg, export(), framework, overwrite=overwrite)
    elif fmt.key in native:
        checkpoint.write_atomic(path, native[fmt.key], overwrite=overwrite)
    else:
        mine = [s for f in FORMATS if f.key in native for s in f.suffixes]
        raise ConvertError(f"a {framework} model saves to .safetensors or {'/'.join(mine)}; {path} is a {fmt.label}: "
                           f"load the weights into resnet_{fmt.framework} or use `resnet-parity convert`")
    return fmt


def load_model(fw: Any, path: str | os.PathLike, names: str | None, overrides: dict[str, Any]) -> Any:
    """Build ``fw``'s model for any supported file and load its weights (strictly)."""
    model = overrides.pop("model", None)
    src = read(path, names=names, model=model, overrides=overrides)
    net = fw.build(src.model, **src.config.to_dict())
    fw.import_weights(net, src.weights)
    return net
