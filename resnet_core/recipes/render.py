"""A recipe run as a chart (PNG, matplotlib) and a Markdown table, written atomically into one folder."""

from __future__ import annotations

import io
from pathlib import Path

from ..atomic import write_atomic, write_text_atomic
from .run import SEPARATION, RunResult


def _pair_label(pair: str) -> str:
    a, b = pair.split("|")
    fa, da = a.split("/")
    fb, db = b.split("/")
    return f"{fa} vs {fb} ({da})" if da == db else f"{fa}: {db} vs {da}"


def table(res: RunResult) -> str:
    """The Markdown summary: per trainer and per pair."""
    r = res.recipe
    lines = [
        f"# Recipe `{r.name}`: {res.steps} steps, batch {res.batch}",
        "",
        f"{r.source}. Variant `{r.variant}`, {r.optimizer} lr {r.lr}"
        + (f", momentum {r.momentum}" if r.momentum else "")
        + (f", weight decay {r.weight_decay}" if r.weight_decay else "")
        + f", schedule {r.schedule}, normalisation {r.normalisation}, augmentation {dict(r.augmentation) or 'none'}.",
        "",
        "| framework / dtype | first loss | last loss | last batch accuracy | held-out accuracy | images/s (loop) |",
        "|---|---|---|---|---|---|",
    ]
    for k, losses in res.loss.items():
        held = res.held_out_accuracy.get(k)
        lines.append(
            f"| {k} | {losses[0]:.4f} | {losses[-1]:.4f} | {res.accuracy[k][-1]:.3f} | "
            f"{'-' if held is None else f'{held:.3f}'} | {res.images_per_s(k):.1f} |"
        )
    lines += [
        "",
        f"Distances are the scaled max-abs error max|a-b|/max(1,max|a|) over every trainable tensor (weights) and "
        f"over each step's logits; trajectories separate at the first step where either exceeds {SEPARATION:g}.",
        "",
        "| pair | max weight distance | max logit distance | last weight distance | separates at step |",
        "|---|---|---|---|---|",
    ]
    for pair, w in res.weight_distance.items():
        step = res.separation_step(pair)
        lines.append(
            f"| {_pair_label(pair)} | {max(w):.2e} | {max(res.logit_distance[pair]):.2e} | {w[-1]:.2e} | "
            f"{'never' if step is None else step} |"
        )
    return "\n".join(lines) + "\n"


def plot_png(res: RunResult, dpi: int = 100, figsize: tuple[float, float] = (14, 10)) -> bytes:
    """Loss and batch accuracy per step (a colour per framework, dashed for float32), and the distances per step:
    between frameworks, and each framework's float32 run against its float64 run (rounding alone); as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    steps = range(1, res.steps + 1)
    fig, axes = plt.subplots(2, 2, figsize=figsize, constrained_layout=True)
    colours = {"torch": "tab:red", "keras": "tab:blue", "paddle": "tab:green"}
    pair_colours = {"torch|keras": "tab:purple", "torch|paddle": "tab:orange", "keras|paddle": "tab:cyan"}
    for k, losses in res.loss.items():
        fw, dt = k.split("/")
        style = dict(color=colours.get(fw), linestyle="--" if dt == "float32" else "-", marker="o", markersize=3)
        axes[0, 0].plot(steps, losses, label=k, **style)
        axes[0, 1].plot(steps, res.accuracy[k], label=k, **style)
    axes[0, 0].set(title="training loss (each step's batch)", xlabel="step", ylabel="cross-entropy")
    axes[0, 1].set(title="batch accuracy", xlabel="step", ylabel="accuracy", ylim=(-0.02, 1.02))
    for pair in res.weight_distance:
        a, b = (p.split("/") for p in pair.split("|"))
        if a[1] == b[1]:
            ax, colour = axes[1, 0], pair_colours.get(f"{a[0]}|{b[0]}")
            dashed = a[1] == "float32"
        else:
            ax, colour, dashed = axes[1, 1], colours.get(a[0]), False
        w = [max(d, 1e-17) for d in res.weight_distance[pair]]
        lg = [max(d, 1e-17) for d in res.logit_distance[pair]]
        ax.semilogy(steps, w, color=colour, linestyle="--" if dashed else "-", marker="o", markersize=3,
                    label=f"{_pair_label(pair)}: weights")  # fmt: skip
        ax.semilogy(steps, lg, color=colour, linestyle="--" if dashed else "-", marker="x", markersize=5,
                    linewidth=0.8, alpha=0.6, label=f"{_pair_label(pair)}: logits")  # fmt: skip
    axes[1, 0].set(title="between frameworks (solid float64, dashed float32)")
    axes[1, 1].set(title="rounding: each framework, float32 run vs float64 run")
    for ax in axes[1]:
        ax.axhline(SEPARATION, color="black", linewidth=1)
        ax.text(1, SEPARATION * 1.6, f"separation threshold {SEPARATION:g}", fontsize=8)
        ax.set(xlabel="step", ylabel="scaled max-abs error (o weights, x logits)", ylim=(1e-17, 1e5))
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncol=2 if ax in axes[1] else 1, loc="upper center" if ax in axes[1] else "best")
    fig.suptitle(f"recipe {res.recipe.name}: {res.steps} steps, batch {res.batch}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    from PIL import Image  # matplotlib's own dependency

    out = io.BytesIO()  # a 256-colour palette: a third of the bytes, no visible change for line charts
    Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(colors=256).save(out, format="PNG", optimize=True)
    return out.getvalue()


def write(res: RunResult, out: str | Path) -> tuple[Path, Path]:
    """Write ``train.md`` and ``train.png`` into ``out`` (created); returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md, png = out / "train.md", out / "train.png"
    data = plot_png(res)
    write_atomic(png, lambda tmp: Path(tmp).write_bytes(data))
    write_text_atomic(md, table(res) + f"\n![trajectories]({png.name})\n")
    return md, png
