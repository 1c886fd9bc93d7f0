"""``resnet-parity inspect FILE``: what a weights file holds (model, config, tensors, totals, NaN/Inf).

Exit status: 0 for a valid checkpoint with finite values, 1 when some values are
NaN/Inf, 2 when the file cannot be read or fits no supported model. Argument
parsing and printing only; reading is :mod:`resnet_core.porting`'s.
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np

from resnet_core import porting, spec
from resnet_core.porting import schemes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="weights file (any format `convert` reads)")
    p.add_argument("--model", choices=list(spec.MODELS), help="expect this model (default: detected)")
    p.add_argument(
        "--names",
        choices=schemes.scheme_names(),
        metavar="SCHEME",
        help="naming scheme of FILE, instead of detecting it",
    )


def _nonfinite(a: np.ndarray) -> str:
    """``"2 NaN, 1 Inf"``, or ``""`` when every value is finite."""
    if a.dtype.kind != "f":
        return ""
    nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
    return ", ".join(s for s in (f"{nan} NaN" if nan else "", f"{inf} Inf" if inf else "") if s)


def tensor_table(raw: porting.RawFile, mapping: dict[str, str] | None = None) -> list[str]:
    """One line per tensor as stored: file name, shape, dtype, canonical name where it differs, NaN/Inf."""
    mapping = mapping or {}
    width = max((len(k) for k in raw.tensors), default=4)
    lines = [f"  {'name':{width}}  {'shape':18} {'dtype':8} canonical / problems"]
    for k, a in raw.tensors.items():
        canon = mapping.get(k, "(not a weight)" if mapping else "")
        notes = [canon] if canon and canon != k else []
        if bad := _nonfinite(a):
            notes.append(f"!! {bad}")
        dtype = raw.stored_dtypes.get(k, str(a.dtype))  # as stored: bfloat16, not the float32 it was widened to
        lines.append(f"  {k:{width}}  {tuple(a.shape)!s:18} {dtype:8} {'  '.join(notes)}".rstrip())
    return lines


def run(args: argparse.Namespace) -> int:
    path = os.fspath(args.file)
    raw = porting.read_raw(path)
    size = os.path.getsize(path)
    total = sum(math.prod(a.shape) for a in raw.tensors.values())
    print(f"file    {path} ({raw.format.label}, {size:,} bytes)")
    if raw.metadata:
        print(f"meta    {json.dumps(raw.metadata, sort_keys=True)}")
    try:
        src = porting.resolve(path, raw, names=args.names, model=args.model, allow_nonfinite=True)
    except ValueError:
        # Show what is there, then let the CLI report why it is not a supported model.
        print(f"tensors {len(raw.tensors)} ({total:,} values)")
        print("\n".join(tensor_table(raw)))
        raise
    c = src.config.counts()
    print(f"model   {src.model}")
    print(f"config  {json.dumps(src.config.to_dict())}")
    print(f"scheme  {src.scheme}: {schemes.get(src.scheme).description}" + "".join(f"; {n}" for n in src.notes))
    print(f"tensors {len(raw.tensors)} in the file, {len(src.weights)} canonical")
    print("\n".join(tensor_table(raw, src.mapping)))
    print(
        f"params  {c.trainable:,} trainable + {c.bn_statistics:,} BN statistics = {c.trainable + c.bn_statistics:,} "
        f"({total:,} values in the file)"
    )
    bad = {k: _nonfinite(a) for k, a in raw.tensors.items() if _nonfinite(a)}
    if bad:
        print(f"NaN/Inf {len(bad)} tensor(s): " + "; ".join(f"{k} ({v})" for k, v in bad.items()))
        return 1
    print("NaN/Inf none")
    return 0
