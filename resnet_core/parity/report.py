"""The parity matrix's rows as text: the lines ``resnet-parity report`` prints, and ``report.md`` with its plots."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import pathlib
import sys
from types import ModuleType
from typing import Any

from .. import frameworks
from ..atomic import write_text_atomic
from .matrix import Row
from .settings import PAIRS, TOLERANCES


def symmetric(a: Row, b: Row) -> bool:
    """Whether ``b`` is ``a`` in the other direction with the same numbers.

    Same cell (variant, level, input, device), opposite directions, the same verdict, and -- where
    there are numbers -- the same probes with bit-identical differences (``max_abs``: ``|x - y|`` is
    symmetric; the scaled error divides by the reference's own peak, so it may differ in the last
    digits, and the larger of the two is shown).
    """
    if (a.variant, a.level, a.detail, a.device) != (b.variant, b.level, b.detail, b.device):
        return False
    if a.direction != b.direction[::-1] or a.status != b.status or a.skipped != b.skipped:
        return False
    if a.comparison is None or b.comparison is None:
        return a.comparison is None and b.comparison is None
    ea, eb = a.comparison.errors, b.comparison.errors
    return (
        a.comparison.missing == b.comparison.missing
        and [e.name for e in ea] == [e.name for e in eb]
        and all(x.max_abs == y.max_abs and x.problem == y.problem for x, y in zip(ea, eb))
    )


def merged(rows: list[Row]) -> list[tuple[Row, bool]]:
    """``rows`` with each symmetric pair of directions shown once: ``(row, both_directions)``.

    Of a symmetric pair the row with the larger error is kept, at the place of the first; a direction
    whose reverse differs (or is absent) stays on its own.
    """
    out: list[tuple[Row, bool]] = []
    used: set[int] = set()
    for i, r in enumerate(rows):
        if i in used:
            continue
        j = next((j for j in range(i + 1, len(rows)) if j not in used and symmetric(r, rows[j])), None)
        if j is None:
            out.append((r, False))
            continue
        used.add(j)
        other = rows[j]
        bigger = other if r.comparison is not None and other.comparison.max_error > r.comparison.max_error else r
        out.append((dataclasses.replace(bigger, direction=r.direction), True))  # labelled in the first's order
    return out


def direction_label(r: Row, both: bool) -> str:
    """The direction with each implementation's label, so every row says which Keras backend ran."""
    a, b = (frameworks.label(x) for x in r.direction)
    return f"{a} <-> {b}" if both else f"{a} -> {b}"


def row_line(r: Row, both: bool = False) -> str:
    tol = TOLERANCES.get(r.level)
    err = f"{r.comparison.max_error:.2e}" if r.comparison is not None else "-"
    where = r.comparison.first_divergence.name if r.comparison is not None and r.comparison.first_divergence else ""
    note = r.skipped or (f"first diverging: {where}" if where else "")
    return (
        f"{r.variant:29} {direction_label(r, both):28} {r.level:9} {r.detail:8} {r.device:4} "
        f"{err:>9} {(f'{tol:.0e}' if tol else '-'):>6}  {r.status:4} {note}"
    )


TABLE_HEAD = f"{'variant':29} {'direction':28} {'level':9} {'input':8} {'dev':4} {'max error':>9} {'tol':>6}  result"


# ----------------------------------------------------------------------------- the written report
def _versions(mods: dict[str, ModuleType]) -> str:
    import importlib.metadata as md

    dists = {
        "torch": ["torch"],
        "keras": ["keras", "tensorflow-cpu", "tensorflow"],
        "paddle": ["paddlepaddle", "paddlepaddle-gpu"],
        "keras-jax": ["keras", "jax", "jaxlib"],
        "keras-torch": ["keras", "torch"],
    }
    out = []
    for fw in mods:
        found = []
        for d in dists[fw]:
            with contextlib.suppress(md.PackageNotFoundError):
                found.append(f"{d} {md.version(d)}")
        out.append(f"{frameworks.label(fw)}: " + (", ".join(found) or "?"))
    return "; ".join(out)


def panel_floor(curves: list[list]) -> float:
    """The bottom of a log axis for these per-layer curves: one decade below the smallest non-zero error."""
    nonzero = [e.error for errors in curves for e in errors if e.problem is None and e.error > 0]
    return 10.0 ** (math.floor(math.log10(min(nonzero))) - 1) if nonzero else 1e-9


def plot_values(errors: list, bottom: float) -> tuple[list[float], list[int], list[int]]:
    """Y values of one per-layer curve on a log axis: ``(ys, exact, broken)``.

    An exactly-zero error cannot sit on a log axis; it is drawn at ``bottom`` (the axis bottom,
    :func:`panel_floor`, never an invented 1e-12) and marked "exact". A probe with a problem (shape,
    NaN) is drawn at 1.0, far above every tolerance.
    """
    exact = [i for i, e in enumerate(errors) if e.problem is None and e.error == 0]
    broken = [i for i, e in enumerate(errors) if e.problem is not None]
    ys = [1.0 if e.problem is not None else (bottom if e.error == 0 else e.error) for e in errors]
    return ys, exact, broken


# The per-layer plots' geometry, in inches. The margins are fixed rather than measured by tight_layout, which
# draws every figure twice to measure it (3 of the 7 s the plots of a `report --quick` took); the labels are
# short (stage names, six characters at most, rotated; log-scale y ticks).
WIDTH_IN, PANEL_IN = 11.0, 3.1
LEFT_IN, RIGHT_IN, TOP_IN, BOTTOM_IN, GAP_IN = 0.8, 0.15, 0.3, 0.55, 0.85


def _fixed_layout(fig: Any, panels: int) -> None:
    height = PANEL_IN * panels
    axes_in = (height - TOP_IN - BOTTOM_IN - GAP_IN * (panels - 1)) / panels
    fig.subplots_adjust(
        left=LEFT_IN / WIDTH_IN,
        right=1 - RIGHT_IN / WIDTH_IN,
        top=1 - TOP_IN / height,
        bottom=BOTTOM_IN / height,
        hspace=GAP_IN / axes_in,
    )


def load_plotting() -> None:
    """Import matplotlib (Agg) now, with its font list (built on a first run), so that the plots do not begin by
    waiting for it. ``report`` runs it in a thread beside the levels: the import takes 0.5 s, 0.8 s on a first run
    (measured), which were otherwise spent at the end with the other core idle. Without matplotlib, nothing happens
    here and the report says so."""
    with contextlib.suppress(ImportError):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # imports the font manager, which builds its list


def _plot(
    out: pathlib.Path, rows: list[Row], pair: tuple[str, str], variants: list[str], both: bool = False
) -> str | None:
    """Per-layer error of one direction (or of both, when they are symmetric), one panel per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogFormatter, NullLocator

    mine = [
        r for r in rows if r.direction == pair and r.device == "cpu" and r.level in ("eval", "train") and r.comparison
    ]
    if not mine:
        return None
    shown = [v for v in variants if any(r.variant == v for r in mine)]
    fig, axes = plt.subplots(len(shown), 1, figsize=(WIDTH_IN, PANEL_IN * len(shown)), squeeze=False)
    _fixed_layout(fig, len(shown))
    arrow = "<->" if both else "->"
    for ax, variant in zip(axes[:, 0], shown):
        panel = [r for r in mine if r.variant == variant]
        bottom = panel_floor([r.comparison.errors for r in panel])
        labelled: set[int] = set()
        top = max(TOLERANCES["eval"], TOLERANCES["train"]) * 5  # both tolerance lines in view
        for r in panel:
            ys, exact, _broken = plot_values(r.comparison.errors, bottom)
            top = max(top, max(ys, default=0) * 3)
            (line,) = ax.semilogy(range(len(ys)), ys, marker=".", lw=1, label=f"{r.level} {r.detail}")
            if exact:
                ax.plot(exact, [bottom] * len(exact), "v", ms=7, color=line.get_color(), clip_on=False)
            for i in set(exact) - labelled:
                ax.annotate("exact", (i, bottom), xytext=(5, 3), textcoords="offset points", fontsize=7)
            labelled |= set(exact)
            ticks = [(i, e.stage) for i, e in enumerate(r.comparison.errors) if e.stage]
        ax.set_ylim(bottom, top)
        # No minor ticks: eight per decade over six to nine decades, one artist each, were 40 % of the drawing time
        ax.yaxis.set_minor_locator(NullLocator())
        # Plain "1e-06" labels: the default 10^-6 is typeset by mathtext (7 plots: 4.5 -> 3.8 s without it, measured)
        ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        if labelled:
            ax.plot([], [], "v", color="grey", label="exactly 0 (drawn at the axis bottom)")
        for level, ls in (("eval", "--"), ("train", ":")):
            ax.axhline(TOLERANCES[level], color="grey", ls=ls, lw=0.8)
        ax.set_xticks([i for i, _ in ticks], [s for _, s in ticks], fontsize=7, rotation=90)
        ax.set_ylabel("scaled max-abs error", fontsize=8)
        ax.set_title(
            f"{variant}: {frameworks.label(pair[0])} {arrow} {frameworks.label(pair[1])} "
            "(dashed: eval tolerance, dotted: train tolerance)",
            fontsize=9,
        )
        ax.legend(fontsize=7, loc="lower center", ncols=3)
        ax.grid(alpha=0.3)
    name = f"per-layer-error-{pair[0]}-{'and' if both else 'to'}-{pair[1]}.png"
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def plot_pairs(rows: list[Row], fws: list[str]) -> list[tuple[tuple[str, str], bool]]:
    """The directions to plot: one per unordered pair whose plotted rows are all symmetric, else both."""
    out = []
    for pair in PAIRS:
        if pair[0] not in fws or pair[1] not in fws:
            continue
        if (pair[::-1], True) in out:
            continue
        there = [r for r in rows if r.direction == pair and r.level in ("eval", "train")]
        back = [r for r in rows if r.direction == pair[::-1] and r.level in ("eval", "train")]
        same = len(there) == len(back) and all(any(symmetric(a, b) for b in back) for a in there)
        out.append((pair, same))
    return [(p, both) for p, both in out]


def symmetry_note(rows: list[Row]) -> str:
    """What the merged rows mean, with the count checked on these rows (not assumed)."""
    shown = merged(rows)
    both = sum(1 for _, b in shown if b)
    alone = sum(1 for r, b in shown if not b and any(o.direction == r.direction[::-1] for o in rows))
    text = (
        f"`a <-> b`: both directions were run and gave the same numbers (the same difference at every probe, "
        f"bit for bit, and the same verdict); shown once with the larger scaled error ({both} such rows). "
    )
    if alone:
        return text + f"**{alone} rows differ between the two directions and are shown each on its own.**"
    return text + "Every direction run in this report matched its reverse."


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
        symmetry_note(rows),
        "",
        "| variant | direction | level | input | device | max error | tolerance | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    shown = merged(rows)
    for r, both in shown:
        err = f"{r.comparison.max_error:.2e}" if r.comparison is not None else "-"
        tol = f"{TOLERANCES[r.level]:.0e}" if r.level in TOLERANCES else "-"
        res = r.status
        if r.passed is False:
            first = r.comparison.first_divergence if r.comparison is not None else None
            res = f"**FAIL** ({first.name if first else 'structure'})"
        if r.skipped:
            res = f"skip: {r.skipped}"
        lines.append(
            f"| {r.variant} | {direction_label(r, both)} | {r.level} | {r.detail} | {r.device} "
            f"| {err} | {tol} | {res} |"
        )
    if failed:
        lines += ["", "## Failures", ""]
        for r in failed:
            if r.comparison is not None:
                lines += ["```", r.comparison.message(), "```", ""]
    try:
        plots = [p for p in (_plot(out, rows, pair, variants, both) for pair, both in plot_pairs(rows, fws)) if p]
    except ImportError:
        plots = []
        lines += ["", "(No plots: matplotlib is not installed; pip install 'resnet-parity[report]'.)"]
    if plots:
        lines += [
            "",
            "## Per-layer error",
            "",
            "Every probe in execution order (x axis, stage outputs labelled), eval and train mode, on the CPU; "
            "an error that is exactly 0 is marked at the bottom of the axis (a log axis has no 0). One plot per "
            "pair of frameworks where both directions gave the same numbers, else one per direction.",
            "",
        ]
        lines += [f"![{p}]({p})" for p in plots]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path
