"""The canonical checkpoint: a ``.safetensors`` file, read and written by the safetensors library.

Format (https://github.com/huggingface/safetensors, no pickle anywhere)::

    [8 bytes: little-endian u64 N][N bytes: JSON header][raw little-endian tensor data]

The header maps each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}``
(offsets relative to the data section) plus an optional ``"__metadata__"`` object of
string -> string. The data section must be covered exactly, without holes or overlaps.

Tensors are written by ``safetensors.numpy.save_file`` and read by ``safetensors.safe_open``
(numpy only: the library pulls in no framework). The header is still checked here first,
because the library alone refuses the same broken files with less to go on (measured with
safetensors 0.8.0 on the cases of ``parity_tests/test_convert_cli.py``, and checked by
``test_the_library_alone_says_less``): its messages never name the file; a truncated file,
offsets out of range and trailing bytes all read "incomplete metadata, file not fully
covered"; an overlap and a hole both read "invalid offset for tensor"; a size mismatch reads
"invalid shape, data type, or offset for tensor" without the byte counts; and it accepts a
header entry with keys besides dtype/shape/data_offsets, which this reader refuses. Its numpy
API cannot return BF16 (``TypeError: data type 'bfloat16' not understood``), so BF16 tensors
are read from their offsets here and widened exactly to F32.

A canonical checkpoint holds the canonical names in the canonical layout (PyTorch's:
OIHW conv kernels, [out, in] linear weights) and states in its metadata the model,
its full config (JSON), the format version and the framework it came from. The library
stores tensors sorted by dtype and name, so the file's order is not the canonical order;
readers take tensors by name (``check_weights`` puts them in canonical order).
Every write is validated first and atomic (:mod:`resnet_core.atomic`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

from .. import spec
from ..atomic import write_atomic
from ..weights import check_weights

FORMAT = "resnet-parity"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the Rust reference implementation's limit

# safetensors dtype -> numpy dtype (little-endian). BF16 has no numpy dtype: read as u16, widened to F32.
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}  # fmt: skip
_WRITE_DTYPES = {np.dtype(v).newbyteorder("<"): k for k, v in DTYPES.items() if k not in ("BF16",)}


class CheckpointError(ValueError):
    """A file is not a valid safetensors / canonical checkpoint; the message says why."""


# --------------------------------------------------------------------------- safetensors
def save_file(
    path: str | os.PathLike,
    tensors: Mapping[str, np.ndarray],
    metadata: Mapping[str, str] | None = None,
    *,
    overwrite: bool = True,
) -> None:
    """Write ``tensors`` and string ``metadata`` as a safetensors file with the library, atomically.

    Checked here first so the error names the tensor and the dtype (the library raises a bare
    ``TypeError``/``ValueError``); the library then writes the temporary file that is renamed into place.
    """
    if metadata:
        bad = [k for k, v in metadata.items() if not (isinstance(k, str) and isinstance(v, str))]
        if bad:
            raise CheckpointError(f"safetensors metadata must map str to str; not so for {bad}")
    arrays: dict[str, np.ndarray] = {}
    for name, value in tensors.items():
        a = np.asarray(value)
        dt = a.dtype.newbyteorder("<")
        if dt not in _WRITE_DTYPES:
            raise CheckpointError(f"tensor {name!r} has dtype {a.dtype}, which safetensors cannot store")
        arrays[name] = np.ascontiguousarray(a, dtype=dt)

    def write(tmp: str) -> None:
        # Bytes, then one write: the library's save_file writes through a temp name of its own beside
        # ``tmp``, which fails where ``tmp`` is an unnamed O_TMPFILE reached through /proc/self/fd.
        data = safetensors.numpy.save(arrays, metadata=dict(metadata) if metadata else None)
        with open(tmp, "wb") as f:
            f.write(data)

    write_atomic(path, write, overwrite=overwrite)


def _parse_header(raw: bytes, path: str) -> dict[str, Any]:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupted safetensors header (not valid JSON: {e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(
            f"{path}: corrupted safetensors header (expected a JSON object, received {type(header).__name__})"
        )
    return header


def _read_header(path: str) -> tuple[dict[str, Any], int, int]:
    """``(header, offset of the data section, data section length)``; only the header is read."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(
                f"{path}: truncated safetensors file ({size} bytes; expected at least an 8-byte header length)"
            )
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER_BYTES or n + 8 > size:
            raise CheckpointError(
                f"{path}: truncated or corrupted safetensors file "
                f"(header length {n} bytes, file has {size - 8} after it)"
            )
        header = _parse_header(f.read(n), path)
    return header, 8 + n, size - 8 - n


def _check_header(header: dict[str, Any], data_len: int, path: str) -> dict[str, str]:
    """Validate every header entry and the data layout; returns the metadata. Raises with a precise message."""
    header = dict(header)
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise CheckpointError(f"{path}: corrupted safetensors header (__metadata__ must map str to str)")
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(
                f"{path}: corrupted safetensors header entry {name!r}: expected dtype, shape and data_offsets"
            )
        dt, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in DTYPES:
            raise CheckpointError(f"{path}: tensor {name!r} has unknown dtype {dt!r}; expected one of {sorted(DTYPES)}")
        if not (
            isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise CheckpointError(f"{path}: tensor {name!r} has invalid shape {shape!r}")
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise CheckpointError(f"{path}: tensor {name!r} has invalid data_offsets {offsets!r}")
        begin, end = offsets
        nbytes = math.prod(shape) * DTYPES[dt].itemsize
        if not 0 <= begin <= end or end > data_len:
            raise CheckpointError(
                f"{path}: tensor {name!r} data_offsets {offsets} out of range "
                f"(data section has {data_len} bytes; truncated file?)"
            )
        if end - begin != nbytes:
            raise CheckpointError(
                f"{path}: tensor {name!r} of dtype {dt} and shape {shape} needs {nbytes} bytes, "
                f"data_offsets give {end - begin}"
            )
        spans.append((begin, end, name))
    pos = 0
    for begin, end, name in sorted(spans):
        if begin < pos:
            raise CheckpointError(
                f"{path}: tensor {name!r} overlaps the previous tensor's data (offset {begin} < {pos})"
            )
        if begin > pos:
            raise CheckpointError(
                f"{path}: hole in the data section before tensor {name!r} (bytes {pos}..{begin} unused)"
            )
        pos = end
    if pos != data_len:
        raise CheckpointError(f"{path}: {data_len - pos} trailing bytes after the last tensor: corrupted file")
    return meta


def _read_bf16(path: str, start: int, info: dict[str, Any]) -> np.ndarray:
    """A BF16 tensor widened exactly to F32 (bfloat16 is the top half of a float32)."""
    begin, end = info["data_offsets"]
    with open(path, "rb") as f:
        f.seek(start + begin)
        raw = f.read(end - begin)
    a = np.frombuffer(raw, dtype="<u2").reshape(info["shape"])
    return (a.astype("<u4") << 16).view("<f4")


def load_file(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read and validate a safetensors file: ``(tensors in file order, metadata)``.

    Raises :class:`CheckpointError` for a truncated file, a bad header, an unknown
    dtype, offsets out of range, overlapping or leaving holes, or non-string metadata.
    """
    tensors, meta, _stored = load(path)
    return tensors, meta


def load(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    """:func:`load_file`, plus the stored dtype of every tensor that numpy cannot hold and was widened
    (``{"name": "bfloat16"}``), read from the one header pass.
    """
    path = os.fspath(path)
    header, start, data_len = _read_header(path)
    meta = _check_header(header, data_len, path)
    tensors: dict[str, np.ndarray] = {}
    stored: dict[str, str] = {}
    try:
        with safetensors.safe_open(path, framework="np") as f:
            for name in f.offset_keys():
                info = header[name]
                if info["dtype"] == "BF16":
                    tensors[name] = _read_bf16(path, start, info)
                    stored[name] = "bfloat16"
                else:
                    tensors[name] = f.get_tensor(name)
    except safetensors.SafetensorError as e:  # a file changed under us, or a check the header pass lacks
        raise CheckpointError(f"{path}: corrupted safetensors file ({e})") from None
    return tensors, meta, stored


# --------------------------------------------------------------------------- canonical checkpoint
def metadata_for(cfg: spec.Config, framework: str) -> dict[str, str]:
    """The metadata a canonical checkpoint of ``cfg`` carries: enough to rebuild the model from the file alone."""
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model": cfg.model,
        "config": json.dumps(cfg.to_dict(), sort_keys=True),
        "framework": framework,
    }


def is_canonical(metadata: Mapping[str, str]) -> bool:
    return metadata.get("format") == FORMAT


def config_from_metadata(metadata: Mapping[str, str], path: str = "checkpoint") -> spec.Config:
    """The model config a canonical checkpoint states, validated like any builder call."""
    version = metadata.get("format_version", "")
    if not version.isdigit() or int(version) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is not supported "
            f"(this version reads up to {FORMAT_VERSION})"
        )
    model = metadata.get("model", "")
    if model not in spec.MODELS:
        raise CheckpointError(
            f"{path}: checkpoint holds model {model!r}; expected one of {list(spec.MODELS)} "
            f"(a file of another architecture?)"
        )
    try:
        cfg = json.loads(metadata.get("config", ""))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: checkpoint config is not valid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: checkpoint config must be a JSON object, received {cfg!r}")
    try:
        return spec.make_config(model, **cfg)
    except ValueError as e:
        raise CheckpointError(f"{path}: checkpoint config is invalid: {e}") from None


def write(
    path: str | os.PathLike,
    cfg: spec.Config,
    weights: Mapping[str, np.ndarray],
    framework: str = "unknown",
    *,
    overwrite: bool = True,
) -> None:
    """Write a canonical checkpoint (validated first: nothing is written for bad weights).

    ``framework`` is recorded as where the weights came from; it is only information.
    """
    checked = check_weights(cfg, weights)
    save_file(path, checked, metadata_for(cfg, framework), overwrite=overwrite)
