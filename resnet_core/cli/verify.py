"""``resnet-parity verify SRC [DST]``: check a port on the user's own weights, layer by layer.

Argument parsing and printing only; the work is :func:`resnet_core.parity.verify.verify`.
Exit status 0 when every comparison is within ``settings.FORWARD_TOL``, 1 when one is not
(the first diverging layer is named), 2 when a file cannot be read.
"""

from __future__ import annotations

import argparse

from resnet_core import spec
from resnet_core.names import FRAMEWORKS
from resnet_core.porting import schemes
from resnet_core.porting.formats import suffix_list


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", metavar="SRC", help=f"the original weights ({suffix_list(False)})")
    p.add_argument(
        "dst",
        metavar="DST",
        nargs="?",
        help="the port to check; without it, SRC is converted into each framework's native file and checked",
    )
    p.add_argument(
        "--inputs", metavar="PATH", help="your own inputs too: a .npy batch (NCHW/NHWC) or a folder of images"
    )
    p.add_argument(
        "--framework",
        dest="fws",
        action="append",
        choices=list(FRAMEWORKS),
        help="target framework(s) when there is no DST (default: every installed one); repeatable",
    )
    add_source_options(p)


def add_source_options(p: argparse.ArgumentParser) -> None:
    """Options that say how to read SRC, shared with ``convert``."""
    p.add_argument("--model", choices=list(spec.MODELS), help="expect this model (default: detected)")
    p.add_argument(
        "--names",
        choices=schemes.scheme_names(),
        metavar="SCHEME",
        help=f"naming scheme of SRC, instead of detecting it: {', '.join(schemes.scheme_names())}",
    )
    p.add_argument(
        "--ema",
        action="store_true",
        help="from a training checkpoint, read the averaged weights (timm state_dict_ema, torchvision model_ema)",
    )


def print_verification(v) -> None:
    print(f"reference: {v.source.path} in {v.reference} ({v.source.scheme} names, {v.source.model})")
    print(v.report())


def run(args: argparse.Namespace) -> int:
    from resnet_core.parity.verify import verify

    v = verify(args.src, args.dst, inputs=args.inputs, fws=args.fws, names=args.names, model=args.model, ema=args.ema)
    print_verification(v)
    return 0 if v.passed else 1
