"""``resnet-parity report``: the parity matrix (:mod:`resnet_core.parity`), printed as a table and written as a Markdown report."""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
import warnings
from types import ModuleType

# parity first: it sets OMP_WAIT_POLICY before any framework loads
from .parity import EVAL_SIZES, LEVELS, PAIRS, TOLERANCES, Matrix, Row  # isort: skip
from . import frameworks, spec, summary
from .names import FRAMEWORKS

# ----------------------------------------------------------------------------- the command
def add_arguments(p: argparse.ArgumentParser) -> None:
    variants = [v for _, _, v in spec.VARIANTS]
    p.add_argument("--framework", action="append", choices=list(FRAMEWORKS),
                   help="framework to include (repeatable; default: every installed one; at least two)")
    p.add_argument("--model", action="append", choices=list(spec.MODELS), help="only this model's variants (repeatable)")
    p.add_argument("--variant", action="append", choices=variants, help="only this variant (repeatable)")
    p.add_argument("--level", action="append", choices=list(LEVELS), help="only this level (repeatable; default: all)")
    p.add_argument("--device", choices=["auto", "cpu", "gpu", "all"], default="auto",
                   help="auto (default): the CPU, plus the GPU where a framework sees one")
    p.add_argument("--quick", action="store_true",
                   help="structure, eval forward at the reference size and train-mode forward only (a few seconds)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("parity-report"),
                   help="directory for report.md and the plots (default: parity-report/)")


def _selected(args: argparse.Namespace) -> tuple[list[str], list[str], list[str]]:
    installed = frameworks.available()
    fws = [f for f in FRAMEWORKS if f in (args.framework or installed)]
    missing = [f for f in fws if f not in installed]
    if missing:
        raise RuntimeError(f"framework(s) {missing} not installed: pip install 'resnet-parity[all]'")
    if len(fws) < 2:
        raise RuntimeError(f"the parity matrix needs at least two frameworks; selected/installed: {fws or 'none'}")
    variants = [v for m, _, v in spec.VARIANTS
                if (not args.model or m in args.model) and (not args.variant or v in args.variant)]
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
    return ["cpu"] + (["gpu"] if any(m.training.gpu_unavailable_reason() is None for m in mods.values()) else [])


def _tf32_rows(matrix: Matrix, variants: list[str], pairs: list[tuple[str, str]]) -> list[Row]:
    """Eval forward on the GPU with TF32 left on, at each variant's reference size: figures, no verdict."""
    out = []
    for variant in variants:
        hw = EVAL_SIZES[variant][0]
        for pair in pairs:
            reason = next((f"{fw}: {why}" for fw in pair if (why := matrix.unavailable(fw))), None)
            comparison = None if reason else matrix.eval_forward(variant, pair, hw, tf32=True)
            out.append(Row(variant, pair, "eval-tf32", matrix.device, comparison, skipped=reason,
                           detail=f"{hw[0]}x{hw[1]}", figure=True))
    return out


def _row_line(r: Row) -> str:
    tol = TOLERANCES.get(r.level)
    err = f"{r.comparison.max_error:.2e}" if r.comparison is not None else "-"
    where = r.comparison.first_divergence.name if r.comparison is not None and r.comparison.first_divergence else ""
    note = r.skipped or (f"first diverging: {where}" if where else "")
    return (f"{r.variant:29} {r.direction[0] + ' -> ' + r.direction[1]:17} {r.level:9} {r.detail:8} {r.device:4} "
            f"{err:>9} {(f'{tol:.0e}' if tol else '-'):>6}  {r.status:4} {note}")


TABLE_HEAD = f"{'variant':29} {'direction':17} {'level':9} {'input':8} {'dev':4} {'max error':>9} {'tol':>6}  result"


def run(args: argparse.Namespace) -> int:
    fws, variants, levels = _selected(args)
    start = time.perf_counter()
    warnings.filterwarnings("ignore", message="No ccache found")  # Paddle, at import
    warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
    mods = frameworks.load_all(fws)
    devices = _devices(args.device, mods)
    rows: list[Row] = []
    if "structure" in levels:
        side = summary.rows(fws)
        print(summary.format_table([r for r in side if r["variant"] in variants]))
        print()
        ok = {(r["variant"], r["framework"]): r["matches_spec"] for r in side}
        rows += [Row(v, pair, "structure", "any", ok=ok[v, pair[0]] and ok[v, pair[1]])
                 for v in variants for pair in PAIRS if pair[0] in fws and pair[1] in fws]
    print(TABLE_HEAD)
    print("-" * len(TABLE_HEAD))
    for r in rows:
        print(_row_line(r), flush=True)
    pairs = [p for p in PAIRS if p[0] in fws and p[1] in fws]
    for device in devices:
        matrix = Matrix(device, fws)
        for variant in variants:
            for level in levels:
                if level == "structure":
                    continue
                for pair in pairs:
                    for r in matrix.level(level, variant, pair, EVAL_SIZES[variant][:1] if args.quick else None):
                        rows.append(r)
                        print(_row_line(r), flush=True)
        if device == "gpu" and "eval" in levels:  # the error with TF32 on, as a figure
            for r in _tf32_rows(matrix, variants, pairs):
                rows.append(r)
                print(_row_line(r), flush=True)
    elapsed = time.perf_counter() - start
    failed = [r for r in rows if r.passed is False]
    skipped = [r for r in rows if r.passed is None and not r.figure]
    passed = [r for r in rows if r.passed]
    print(f"\n{len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped "
          f"in {elapsed:.0f} s on {', '.join(devices)}")
    for r in failed:
        if r.comparison is not None:
            print("\n" + r.comparison.message())
    path = write_report(args.out, rows, fws, mods, variants, elapsed)
    print(f"report written to {path}")
    return 1 if failed else 0


# ----------------------------------------------------------------------------- the written report
def _versions(mods: dict[str, ModuleType]) -> str:
    import importlib.metadata as md

    dists = {"torch": ["torch"], "keras": ["keras", "tensorflow-cpu", "tensorflow"],
             "paddle": ["paddlepaddle", "paddlepaddle-gpu"]}
    out = []
    for fw in mods:
        found = []
        for d in dists[fw]:
            try:
                found.append(f"{d} {md.version(d)}")
            except md.PackageNotFoundError:
                pass
        out.append(", ".join(found) or fw)
    return "; ".join(out)


def _plot(out: pathlib.Path, rows: list[Row], pair: tuple[str, str], variants: list[str]) -> str | None:
    """Per-layer error of one direction, one panel per variant; returns the file name written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine = [r for r in rows if r.direction == pair and r.device == "cpu" and r.level in ("eval", "train") and r.comparison]
    if not mine:
        return None
    shown = [v for v in variants if any(r.variant == v for r in mine)]
    fig, axes = plt.subplots(len(shown), 1, figsize=(11, 2.6 * len(shown)), squeeze=False)
    for ax, variant in zip(axes[:, 0], shown):
        for r in (r for r in mine if r.variant == variant):
            errs = r.comparison.errors
            ys = [max(e.error, 1e-12) if e.problem is None else 1.0 for e in errs]
            ax.semilogy(range(len(errs)), ys, marker=".", lw=1, label=f"{r.level} {r.detail}")
            ticks = [(i, e.stage) for i, e in enumerate(errs) if e.stage]
        for level, ls in (("eval", "--"), ("train", ":")):
            ax.axhline(TOLERANCES[level], color="grey", ls=ls, lw=0.8)
        ax.set_xticks([i for i, _ in ticks], [s for _, s in ticks], fontsize=7, rotation=35, ha="right")
        ax.set_ylabel("error (0 drawn at 1e-12)", fontsize=8)
        ax.set_title(f"{variant}: {pair[0]} -> {pair[1]} (dashed: eval tolerance, dotted: train tolerance)", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    name = f"per-layer-error-{pair[0]}-to-{pair[1]}.png"
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def write_report(out: pathlib.Path, rows: list[Row], fws: list[str], mods: dict[str, ModuleType],
                 variants: list[str], elapsed: float) -> pathlib.Path:
    """Write ``report.md`` (and one per-layer error plot per direction) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    failed = [r for r in rows if r.passed is False]
    lines = [
        "# Parity report",
        "",
        f"Frameworks: {_versions(mods)}. Python {sys.version.split()[0]}. "
        f"Ran in {elapsed:.0f} s; **{'all levels pass' if not failed else f'{len(failed)} FAILED'}**.",
        "",
        "A direction `a -> b`: `a` holds seeded random weights and random BN statistics, exported with `a`'s "
        "`export_weights` and imported with `b`'s `import_weights`; both run the same input. *Max error*: for "
        "`eval`/`train`, the largest max-abs error over every probe (each conv, BN, block, stage output and the "
        "logits), scaled by `max(1, max|ref|)`; for `gradients`, `sgd` and `adam` (float64), the largest "
        "L2 error of a canonical tensor relative to that tensor's norm. Tolerances and the reasons for them: "
        "`resnet_core/compare.py`; the differences between the frameworks: `docs/framework-differences.md`.",
        "",
        "| variant | direction | level | input | device | max error | tolerance | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        err = f"{r.comparison.max_error:.2e}" if r.comparison is not None else "-"
        tol = f"{TOLERANCES[r.level]:.0e}" if r.level in TOLERANCES else "-"
        res = r.status
        if r.passed is False:
            first = r.comparison.first_divergence if r.comparison is not None else None
            res = f"**FAIL** ({first.name if first else 'structure'})"
        if r.skipped:
            res = f"skip: {r.skipped}"
        lines.append(f"| {r.variant} | {r.direction[0]} -> {r.direction[1]} | {r.level} | {r.detail} | {r.device} "
                     f"| {err} | {tol} | {res} |")
    if failed:
        lines += ["", "## Failures", ""]
        for r in failed:
            if r.comparison is not None:
                lines += ["```", r.comparison.message(), "```", ""]
    try:
        plots = [p for p in (_plot(out, rows, pair, variants) for pair in PAIRS if pair[0] in fws and pair[1] in fws) if p]
    except ImportError:
        plots = []
        lines += ["", "(No plots: matplotlib is not installed; pip install 'resnet-parity[report]'.)"]
    if plots:
        lines += ["", "## Per-layer error", "",
                  "Every probe in execution order (x axis, stage outputs labelled), eval and train mode, on the CPU.", ""]
        lines += [f"![{p}]({p})" for p in plots]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
