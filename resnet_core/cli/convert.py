"""``resnet-parity convert SRC DST``: port a weights file between formats and frameworks.

Argument parsing and printing only; the work is :func:`resnet_core.porting.convert`.
Formats come from the extensions; only the frameworks the two formats need are
imported (canonical ``.safetensors`` to ``.safetensors`` imports none).
"""

from __future__ import annotations

import argparse
import json

from resnet_core import porting
from resnet_core.porting import schemes
from resnet_core.porting.formats import FORMATS, suffix_list

from .verify import add_source_options


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
    p.add_argument(
        "dst",
        metavar="DST",
        help=f"where to write ({suffix_list(True)}): the format from the extension; "
        "a folder (an existing one, or a path ending in /) is a Hugging Face folder",
    )
    p.add_argument(
        "--to",
        choices=[f.key for f in FORMATS if f.writable],
        help="the format of DST, where its name does not say it (hf: a Hugging Face folder at DST; keras-hub, "
        "keras-hub-backbone: a .weights.h5 that keras-hub's ResNetImageClassifier / ResNetBackbone, built with "
        "the ResNet-18 arguments, loads with load_weights; the backbone file leaves the classifier out)",
    )
    p.add_argument("--num-classes", type=int, help="classes of the new zero classifier of a backbone-only SRC")
    add_source_options(p)
    p.add_argument("--force", action="store_true", help="overwrite DST if it exists")
    p.add_argument("--verify", action="store_true", help="then run `verify SRC DST`: exit 1 if a layer diverges")


def run(args: argparse.Namespace) -> int:
    if args.verify and args.to == "keras-hub-backbone":
        raise porting.ConvertError(
            "--verify compares the logits, and a keras-hub-backbone file holds no classifier: "
            "convert with --to keras-hub to verify the whole network"
        )
    overrides = {"num_classes": args.num_classes} if args.num_classes else None
    source, fmt = porting.convert(
        args.src, args.dst, names=args.names, model=args.model, overwrite=args.force, to=args.to, ema=args.ema,
        overrides=overrides,
    )  # fmt: skip
    print("\n".join(describe_source(source)))
    if fmt.key == "keras-hub-backbone":
        print(f"wrote {args.dst} ({fmt.label}): {len(source.weights) - 2} tensors; the classifier (fc) left out")
    else:
        print(f"wrote {args.dst} ({fmt.label}): {len(source.weights)} tensors")
    if args.verify:
        from resnet_core.parity.verify import verify

        from .verify import print_verification

        v = verify(args.src, args.dst, names=args.names, model=args.model, ema=args.ema)
        print_verification(v)
        return 0 if v.passed else 1
    return 0
