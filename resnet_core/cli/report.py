"""``resnet-parity report``: the parity matrix (:mod:`resnet_core.parity`), printed and written as Markdown."""

from __future__ import annotations

import argparse
import pathlib
import threading
import time
import warnings
from types import ModuleType

from .. import collector, frameworks, spec
from ..parity import structure
from ..parity.matrix import Matrix, Row, tf32_rows
from ..parity.report import TABLE_HEAD, load_plotting, merged, row_line, write_report
from ..parity.settings import LEVELS, PAIRS


def add_arguments(p: argparse.ArgumentParser) -> None:
    variants = list(spec.VARIANTS)
    p.add_argument(
        "--framework",
        action="append",
        choices=list(frameworks.IMPLEMENTATIONS),
        help="framework to include (repeatable; default: every installed one; at least two); keras-jax and "
        "keras-torch are Keras on those backends, each in a worker process",
    )
    p.add_argument(
        "--model", action="append", choices=list(spec.MODELS), help="only this model's variants (repeatable)"
    )
    p.add_argument("--variant", action="append", choices=variants, help="only this variant (repeatable)")
    p.add_argument("--level", action="append", choices=list(LEVELS), help="only this level (repeatable; default: all)")
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "gpu", "all"],
        default="auto",
        help="auto (default): the CPU, plus the GPU where a framework sees one",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="structure, eval forward at the reference size and train-mode forward only (about 30 s on 2 cores)",
    )
    p.add_argument(
        "--weights",
        metavar="FILE",
        help="run the matrix on your weights (any file `convert` reads) instead of seeded random ones; "
        "--variant/--model are then ignored and the structure level skipped",
    )
    p.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path("parity-report"),
        help="directory for report.md and the plots (default: parity-report/)",
    )


def _selected(args: argparse.Namespace) -> tuple[list[str], list[str], list[str]]:
    installed = frameworks.available(implementations=True)
    fws = [f for f in frameworks.IMPLEMENTATIONS if f in (args.framework or installed)]
    missing = [f for f in fws if f not in installed]
    if missing:
        raise RuntimeError(f"framework(s) {missing} not installed: pip install 'resnet-parity[all]'")
    if len(fws) < 2:
        raise RuntimeError(f"the parity matrix needs at least two frameworks; selected/installed: {fws or 'none'}")
    variants = [
        v.id
        for v in spec.VARIANTS.values()
        if (not args.model or v.model in args.model) and (not args.variant or v.id in args.variant)
    ]
    if not variants:
        raise ValueError(f"no variant matches --model {args.model} --variant {args.variant}")
    levels = [lv for lv in LEVELS if not args.level or lv in args.level]
    if args.quick:
        levels = [lv for lv in levels if lv in ("structure", "eval", "train")]
    return fws, variants, levels


def _devices(choice: str, mods: dict[str, ModuleType]) -> list[str]:
    if choice in ("cpu", "gpu"):
        return [choice]
    if choice == "all":
        return ["cpu", "gpu"]
    return ["cpu"] + (["gpu"] if any(m.gpu_unavailable_reason() is None for m in mods.values()) else [])


def _print(rows: list[Row]) -> None:
    """One line per row; a pair of directions with the same numbers as one ``a <-> b`` line."""
    for r, both in merged(rows):
        print(row_line(r, both), flush=True)


def run(args: argparse.Namespace) -> int:
    fws, variants, levels = _selected(args)
    start = time.perf_counter()
    warnings.filterwarnings("ignore", message="No ccache found")  # Paddle, at import
    warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
    user = None
    if args.weights:
        from .. import porting

        user = porting.read(args.weights)
        variants = [pathlib.Path(args.weights.rstrip("/")).name]
        levels = [lv for lv in levels if lv != "structure"]
        print(f"weights {args.weights}: {user.model} {user.config.to_dict()} ({user.scheme} names)")
    with collector.loading_frameworks():  # this process' own: the CLI
        mods = frameworks.load_all(fws)
    threading.Thread(target=load_plotting, name="load-plotting", daemon=True).start()  # needed last, loaded now
    devices = _devices(args.device, mods)
    rows: list[Row] = []
    side: list[dict] = []  # the structure table, printed at the end
    print(TABLE_HEAD)
    print("-" * len(TABLE_HEAD))
    pairs = [p for p in PAIRS if p[0] in fws and p[1] in fws]
    for device in devices:
        matrix = Matrix(device, fws)
        if user is not None:
            matrix.add_weights(variants[0], user.config, user.weights)
        for variant in variants:
            ref = matrix.variant(variant).reference_size
            sizes = (ref,) if args.quick else None
            # eval and train at once, then row by row from the cache (the float64 levels' results would not all
            # fit in the cache together, so they are computed level by level)
            matrix.compute([lv for lv in levels if lv in ("eval", "train")], variant, pairs, sizes)
            # the eval level first, unprinted: the structure level reads its shapes from these runs
            evaluated = matrix.rows("eval", variant, pairs, sizes) if "eval" in levels else []
            if "structure" in levels and device == devices[0]:  # the models the levels use
                mine = structure.rows(fws, [variant], built=matrix.built, probe=matrix.reference_probes)
                side += mine
                ok = {r["framework"]: r["matches_spec"] for r in mine}
                cell = [Row(variant, pair, "structure", "any", ok=ok[pair[0]] and ok[pair[1]]) for pair in pairs]
                rows += cell
                _print(cell)
            for level in levels:
                if level == "structure":
                    continue
                cell = evaluated if level == "eval" else matrix.rows(level, variant, pairs, sizes)
                rows += cell
                _print(cell)  # both directions of a pair first, so a symmetric pair prints once
        if device == "gpu" and "eval" in levels:  # the error with TF32 on, as a figure
            cell = tf32_rows(matrix, variants, pairs)
            rows += cell
            _print(cell)
    if side:
        print("\n" + structure.format_table(side))
    elapsed = time.perf_counter() - start
    failed = [r for r in rows if r.passed is False]
    skipped = [r for r in rows if r.passed is None and not r.figure]
    passed = [r for r in rows if r.passed]
    print(
        f"\n{len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped "
        f"in {elapsed:.0f} s on {', '.join(devices)}"
    )
    for r in failed:
        if r.comparison is not None:
            print("\n" + r.comparison.message())
    path = write_report(args.out, rows, fws, mods, variants, elapsed)
    print(f"report written to {path}")
    return 1 if failed else 0
