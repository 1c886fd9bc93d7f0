"""``resnet-parity summary``: the models side by side in the installed frameworks."""

from __future__ import annotations

import argparse

from .. import frameworks
from ..names import FRAMEWORKS
from ..parity import structure


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--framework",
        action="append",
        choices=list(FRAMEWORKS),
        help="framework(s) to include (default: every installed one)",
    )


def run(args: argparse.Namespace) -> int:
    fws = args.framework or frameworks.available()
    if not fws:
        raise RuntimeError("no framework installed: pip install 'resnet-parity[all]'")
    rs = structure.rows(fws)
    print(structure.format_table(rs))
    return 0 if all(r["matches_spec"] for r in rs) else 1
