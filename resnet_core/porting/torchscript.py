"""TorchScript archives (``torch.jit.save``): their parameters read without running the program.

A TorchScript file is a zip: ``<name>/code/`` holds the compiled program, ``<name>/data.pkl``
pickles the module tree (objects of ``__torch__.*`` classes whose state is an attribute
dict) and ``<name>/data/<key>`` the raw bytes of each tensor storage. ``torch.jit.load``
would compile and attach the program; here ``data.pkl`` is unpickled with an unpickler
that knows three globals only -- a stand-in for every ``__torch__`` class (it records the
attribute dict and runs nothing), ``torch._utils._rebuild_tensor_v2`` (replaced by a numpy
view of the storage) and ``collections.OrderedDict`` -- and refuses any other. The module
tree is then walked for its tensors, named as ``module.state_dict()`` names them.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from typing import Any

import numpy as np

# torch storage class -> numpy dtype (little-endian, as torch.save writes on every platform it supports).
_STORAGES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
    "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}  # fmt: skip


class TorchScriptError(ValueError):
    """The archive holds something this reader does not unpickle; nothing was executed."""


def is_torchscript(path: str) -> bool:
    """A zip whose entries include a ``code/`` folder: what ``torch.jit.save`` writes (``torch.save`` does not)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in n for n in z.namelist())


class _Module:
    """Stand-in for a ``__torch__`` class: keeps the attribute dict ``BUILD`` hands it, runs nothing."""

    def __init__(self, *args: Any) -> None:
        self.attrs: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.attrs = dict(state) if isinstance(state, dict) else {}


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_: Any) -> np.ndarray:
    if not size:
        return storage[offset : offset + 1].reshape(()).copy()
    item = storage.itemsize
    end = offset + 1 + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if min(size) > 0 and end > storage.size:
        raise TorchScriptError(f"a tensor of size {tuple(size)} runs past its storage ({storage.size} items)")
    return np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * item for s in stride)
    ).copy()


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__"):
            return type(name, (_Module,), {})
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _STORAGES:
            return name
        raise TorchScriptError(f"the archive's data.pkl asks for {module}.{name}, which a module tree never needs")

    def persistent_load(self, pid: Any) -> np.ndarray:
        # ('storage', storage class, key, location, numel): the bytes are <prefix>/data/<key>.
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage" and pid[1] in _STORAGES):
            raise TorchScriptError(f"unknown persistent record {pid!r:.80}")
        raw = self.archive.read(f"{self.prefix}/data/{pid[2]}")
        return np.frombuffer(raw, dtype=np.dtype(_STORAGES[pid[1]]))


def _walk(obj: _Module, prefix: str, out: dict[str, np.ndarray]) -> None:
    for name, value in obj.attrs.items():
        if isinstance(value, np.ndarray):
            out[prefix + name] = value
        elif isinstance(value, _Module):
            _walk(value, f"{prefix}{name}.", out)


def read_tensors(path: str) -> dict[str, np.ndarray]:
    """``state_dict()``-named tensors of a TorchScript archive, without compiling or running its code."""
    with zipfile.ZipFile(path) as z:
        pkl = next((n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1), None)
        if pkl is None:
            raise TorchScriptError("no <name>/data.pkl entry")
        prefix = pkl.split("/")[0]
        with z.open(pkl) as f:
            root = _Unpickler(f, z, prefix).load()
    if not isinstance(root, _Module):
        raise TorchScriptError(f"data.pkl holds a {type(root).__name__}, not a module")
    out: dict[str, np.ndarray] = {}
    _walk(root, "", out)
    return out
