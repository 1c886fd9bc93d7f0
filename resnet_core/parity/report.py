"""The parity matrix's rows as text: the lines ``resnet-parity report`` prints, and ``report.md`` with its plots."""

from __future__ import annotations

import contextlib
import pathlib
import sys
from types import ModuleType

from ..atomic import write_text_atomic
from .matrix import Row
from .settings import PAIRS, TOLERANCES


def row_line(r: Row) -> str:
    tol = TOLERANCES.get(r.level)
    err = f"{r.comparison.max_error:.2e}" if r.comparison is not None else "-"
    where = r.comparison.first_divergence.name if r.comparison is not None and r.comparison.first_divergence else ""
    note = r.skipped or (f"first diverging: {where}" if where else "")
    return (
        f"{r.variant:29} {r.direction[0] + ' -> ' + r.direction[1]:17} {r.level:9} {r.detail:8} {r.device:4} "
        f"{err:>9} {(f'{tol:.0e}' if tol else '-'):>6}  {r.status:4} {note}"
    )


TABLE_HEAD = f"{'variant':29} {'direction':17} {'level':9} {'input':8} {'dev':4} {'max error':>9} {'tol':>6}  result"


# ----------------------------------------------------------------------------- the written report
def _versions(mods: dict[str, ModuleType]) -> str:
    import importlib.metadata as md

    dists = {
        "torch": ["torch"],
        "keras": ["keras", "tensorflow-cpu", "tensorflow"],
        "paddle": ["paddlepaddle", "paddlepaddle-gpu"],
    }
    out = []
    for fw in mods:
        found = []
        for d in dists[fw]:
            with contextlib.suppress(md.PackageNotFoundError):
                found.append(f"{d} {md.version(d)}")
        out.append(", ".join(found) or fw)
    return "; ".join(out)


def _plot(out: pathlib.Path, rows: list[Row], pair: tuple[str, str], variants: list[str]) -> str | None:
    """Per-layer error of one direction, one panel per variant; returns the file name written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine = [
        r for r in rows if r.direction == pair and r.device == "cpu" and r.level in ("eval", "train") and r.comparison
    ]
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


def write_report(
    out: pathlib.Path, rows: list[Row], fws: list[str], mods: dict[str, ModuleType], variants: list[str], elapsed: float
) -> pathlib.Path:
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
        "`resnet_core/parity/settings.py`; the differences between the frameworks: `docs/framework-differences.md`.",
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
        lines.append(
            f"| {r.variant} | {r.direction[0]} -> {r.direction[1]} | {r.level} | {r.detail} | {r.device} "
            f"| {err} | {tol} | {res} |"
        )
    if failed:
        lines += ["", "## Failures", ""]
        for r in failed:
            if r.comparison is not None:
                lines += ["```", r.comparison.message(), "```", ""]
    try:
        plots = [
            p for p in (_plot(out, rows, pair, variants) for pair in PAIRS if pair[0] in fws and pair[1] in fws) if p
        ]
    except ImportError:
        plots = []
        lines += ["", "(No plots: matplotlib is not installed; pip install 'resnet-parity[report]'.)"]
    if plots:
        lines += [
            "",
            "## Per-layer error",
            "",
            "Every probe in execution order (x axis, stage outputs labelled), eval and train mode, on the CPU.",
            "",
        ]
        lines += [f"![{p}]({p})" for p in plots]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path
