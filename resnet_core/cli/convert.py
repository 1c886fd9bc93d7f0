"""``resnet-parity convert SRC DST``: port a weights file between formats and frameworks.

Argument parsing and printing only; the work is :func:`resnet_core.porting.convert`.
Formats come from the extensions; only the frameworks the two formats need are
imported (canonical ``.safetensors`` to ``.safetensors`` imports none).
"""

from __future__ import annotations

import argparse
import json

from resnet_core import porting, spec
from resnet_core.porting import schemes
from resnet_core.porting.formats import suffix_list


def describe_source(s: porting.Source) -> list[str]:
    """What was read: the file, the model and its config, the totals, the scheme and how it was mapped."""
    c = s.config.counts()
    lines = [
        f"read  {s.path} ({s.raw.format.label}, from {s.framework})",
        f"      model {s.model} {json.dumps(s.config.to_dict())}",
        f"      {len(s.weights)} tensors, {c.trainable:,} parameters + {c.bn_statistics:,} BN statistics",
        f"      scheme {s.scheme}: {schemes.get(s.scheme).description}",
    ]
    lines += [f"      {n}" for n in s.notes]
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", metavar="SRC", help=f"weights file to read ({suffix_list(False)})")
    p.add_argument("dst", metavar="DST", help=f"file to write ({suffix_list(True)}); format from the extension")
    p.add_argument("--model", choices=list(spec.MODELS), help="expect this model (default: detected)")
    p.add_argument(
        "--names",
        choices=schemes.scheme_names(),
        metavar="SCHEME",
        help=f"naming scheme of SRC, instead of detecting it: {', '.join(schemes.scheme_names())}",
    )
    p.add_argument("--force", action="store_true", help="overwrite DST if it exists")


def run(args: argparse.Namespace) -> int:
    source, fmt = porting.convert(args.src, args.dst, names=args.names, model=args.model, overwrite=args.force)
    print("\n".join(describe_source(source)))
    print(f"wrote {args.dst} ({fmt.label}): {len(source.weights)} tensors")
    return 0
