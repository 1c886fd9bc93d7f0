"""``resnet-parity bench``: the options, and writing/printing the report.

The measuring is :mod:`resnet_core.bench` (workers, plan, report); this module only turns options into
a :class:`~resnet_core.bench.plan.Plan`, runs it and writes ``bench.json`` and ``bench.md``. Both are
written atomically, after every worker has finished, so an interrupted run leaves the previous files
intact rather than half a report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from resnet_core.atomic import write_text_atomic
from resnet_core.bench.plan import ALL_FRAMEWORKS, BENCH_MODELS, MIN_ROUND_S, make_plan
from resnet_core.bench.render import add_derived, markdown
from resnet_core.bench.runner import collect


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``resnet-parity bench``."""
    p.add_argument("--model", action="append", choices=list(BENCH_MODELS), help="model(s) to time (default: all)")
    p.add_argument(
        "--framework",
        action="append",
        choices=list(ALL_FRAMEWORKS),
        help="framework(s) to time (default: every installed one; keras-torch = Keras 3 on its torch "
        "backend, added on GPU machines where TensorFlow sees no GPU)",
    )
    p.add_argument(
        "--setting",
        action="append",
        metavar="NAME",
        help="only these settings (repeatable), e.g. eager; default: all, see the table's labels",
    )
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "gpu"],
        default="auto",
        help="auto (default): the CPU, plus the GPU where one is present; TF32 on and off on the GPU",
    )
    p.add_argument("--batch-size", type=int, metavar="N", help="one batch size for every model (default: per model)")
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="intra-op CPU threads in every framework (default: the CPUs this process may use)",
    )
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations after the first call (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds; the median is reported (default 3)")
    p.add_argument(
        "--iters",
        type=int,
        default=0,
        help=f"iterations per timed round (default 0 = auto: enough for {MIN_ROUND_S} s, from the warm-up step)",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="one iteration at batch 2, small peak matmul: checks that everything runs (CI)",
    )
    p.add_argument("--no-conversion", action="store_true", help="skip timing the checkpoint conversion")
    p.add_argument("--suite", action="store_true", help="also time the full parity suite (pytest, minus bench tests)")
    p.add_argument(
        "--timeout", type=int, default=1800, help="seconds allowed to each framework's worker (default 1800)"
    )
    p.add_argument(
        "--out", default="bench-results", help="directory for bench.json and bench.md (default bench-results/)"
    )


def _command_line() -> str:
    """The command as the user typed it, for the report (whatever the entry point's argv[0] was)."""
    if sys.argv[1:2] == ["bench"]:
        return "resnet-parity bench " + " ".join(sys.argv[2:])
    return "resnet-parity bench"


def run(args: argparse.Namespace) -> int:
    """Validate, measure, write ``bench.json``/``bench.md`` and print the Markdown; 1 if a worker crashed."""
    plan = make_plan(args)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        raise OSError(f"--out {out_dir}: directory is not writable")
    started = time.perf_counter()
    report = collect(plan, command=_command_line(), conversion=not args.no_conversion, suite=args.suite)
    add_derived(report)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    md = markdown(report)
    write_text_atomic(out_dir / "bench.json", json.dumps(report, indent=1, default=str) + "\n")
    write_text_atomic(out_dir / "bench.md", md)
    print(md)
    print(f"bench: wrote {out_dir / 'bench.json'} and {out_dir / 'bench.md'} in {report['wall_s']} s", file=sys.stderr)
    crashed = [w for w in report["workers"] if w["rc"] != 0]
    return 1 if crashed else 0
