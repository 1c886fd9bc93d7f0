"""``resnet-parity train --recipe NAME``: train a seed's recipe side by side in each framework.

Argument parsing and printing only; the work is :mod:`resnet_core.recipes.run` and the chart and table are
:mod:`resnet_core.recipes.render`. With ``--dtype float32`` the same recipe also runs in float64, so that the
table separates rounding (each framework's float32 run against its float64 run) from real differences
(the frameworks against each other in float64).
"""

from __future__ import annotations

import argparse
import sys
import time

from resnet_core import recipes
from resnet_core.frameworks import available
from resnet_core.names import FRAMEWORKS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", required=True, choices=list(recipes.RECIPES), help="which seed's recipe")
    p.add_argument("--steps", type=int, default=20, help="optimizer steps (default 20); the cosine period")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: the recipe's)")
    p.add_argument("--framework", action="append", choices=list(FRAMEWORKS), help="repeatable; default: all installed")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--no-float64", action="store_true", help="with --dtype float32: skip the float64 reference run")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="N", help="canonical checkpoints every N steps")
    p.add_argument("--out", default="train-results", help="output folder (default train-results)")


def _bar(done: int, total: int, started: float) -> None:
    width = 30
    filled = width * done // total
    rate = done / max(time.perf_counter() - started, 1e-9)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] step {done}/{total} ({rate:.2f} steps/s)")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from resnet_core.recipes import render
    from resnet_core.recipes import run as runner

    r = recipes.recipe(args.recipe)
    frameworks = args.framework or available()
    if args.steps < 1 or args.checkpoint_every < 0:
        raise ValueError(
            f"--steps must be >= 1 and --checkpoint-every >= 0, received {args.steps}, {args.checkpoint_every}"
        )
    dtypes = ("float64",) if args.dtype == "float64" else ("float32",) if args.no_float64 else ("float32", "float64")
    started = time.perf_counter()
    print(f"training {r.name} ({r.source}) for {args.steps} steps in {', '.join(frameworks)} ({', '.join(dtypes)})")
    res = runner.run(
        r,
        frameworks,
        steps=args.steps,
        dtypes=dtypes,
        batch=args.batch,
        checkpoint_every=args.checkpoint_every,
        out=args.out,
        progress=lambda done, total: _bar(done, total, started),
    )
    md, png = render.write(res, args.out)
    print(render.table(res))
    print(f"wrote {md} and {png}" + (f" and {len(res.checkpoints)} checkpoints" if res.checkpoints else ""))
    return 0
