# %% [markdown]
# # 03 · Porting trained weights between frameworks
#
# The workflow the project exists for: a model trained in one framework, used in another. This notebook
#
# 1. generates a small 10-class image data set (nothing is downloaded),
# 2. trains the MiniModel for a few steps in **PyTorch** and saves it,
# 3. ports the file to **Keras** and **Paddle**, once with the command line `resnet-parity convert` and once with
#    the Python API `resnet_<framework>.load(...)` / `save(...)`,
# 4. shows that the weights arrive bit for bit, and that predictions and every layer's output agree,
# 5. plots the error per layer, and shows what the parity report looks like.
#
# Models come from the packages; nothing here defines one. Files go to a temporary folder that is removed at the
# end. CPU only; about a minute (each command-line call starts a fresh Python that loads its frameworks).

# %%
# Before the first framework import: quiet the C++ start-up logs, and let idle OpenMP threads sleep, or
# PyTorch's spin-waiting threads fight TensorFlow's and Paddle's pools (10x slower steps on 2 cores).
# The settings and their reasons live in one place, resnet_core.runtime.ENVIRONMENT.
from resnet_core import runtime

runtime.set_environment()

import pathlib
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore", message="No ccache found")

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from resnet_core import frameworks
from resnet_core.parity import compare, settings

fw = frameworks.load_all(["torch", "keras", "paddle"])  # Paddle before TensorFlow: the safe order
import torch

import resnet_keras
import resnet_paddle
import resnet_torch

plt.rcParams.update({"figure.dpi": 72, "font.size": 9})
work_dir = tempfile.TemporaryDirectory(prefix="resnet-parity-nb03-")
work = pathlib.Path(work_dir.name)
torch.manual_seed(0)


def table(headers, rows):
    """Show rows as a Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    display(Markdown("\n".join(lines)))


def cli(*args, clip=None):
    """Run ``resnet-parity ARGS`` with this interpreter in the work folder; show what it prints."""
    print("$ resnet-parity " + " ".join(args))
    r = subprocess.run(
        [sys.executable, "-m", "resnet_core.cli", *args], cwd=work, capture_output=True, text=True, timeout=300
    )
    lines = r.stdout.rstrip().splitlines()
    if clip and len(lines) > clip:
        lines = lines[:clip] + [f"  ... {len(lines) - clip} more lines"]
    print("\n".join(lines))
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


# %% [markdown]
# ## 1. A data set made on the spot
#
# Ten classes: five shapes (disc, square, ring, cross, diamond) in two colours (red, blue), at a random place
# and size on a noisy background, 32×32 RGB, the MiniModel's input size. Generated with NumPy from a seed,
# so every run sees the same images.

# %%
SHAPES = ("disc", "square", "ring", "cross", "diamond")
COLOURS = {"red": (1.0, 0.25, 0.2), "blue": (0.2, 0.45, 1.0)}
CLASSES = [f"{c} {s}" for s in SHAPES for c in COLOURS]


def make_shapes(n, seed):
    """``n`` NCHW float32 images and their labels; label = 2 * shape + colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    images = rng.normal(0.0, 0.15, (n, 3, 32, 32))
    labels = rng.integers(0, len(CLASSES), n)
    for img, label in zip(images, labels):
        shape, colour = divmod(int(label), 2)
        cy, cx = rng.uniform(11, 21, 2)
        r = rng.uniform(6, 10)
        dy, dx = np.abs(yy - cy), np.abs(xx - cx)
        dist = np.hypot(dy, dx)
        mask = (
            dist < r,
            np.maximum(dy, dx) < 0.8 * r,
            np.abs(dist - 0.75 * r) < 1.5,
            (np.minimum(dy, dx) < 1.5) & (np.maximum(dy, dx) < r),
            dy + dx < r,
        )[shape]
        img += mask * np.array(list(COLOURS.values())[colour])[:, None, None]
    return images.astype(np.float32), labels.astype(np.int64)


x_train, y_train = make_shapes(960, seed=0)
x_test, y_test = make_shapes(128, seed=1)

fig, axes = plt.subplots(1, 10, figsize=(10, 1.5))
for c, ax in enumerate(axes):
    ax.imshow(np.clip(x_train[np.flatnonzero(y_train == c)[0]].transpose(1, 2, 0), 0, 1), interpolation="nearest")
    ax.set_title(CLASSES[c], fontsize=8)
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()
plt.show()
print(
    f"{len(x_train)} training and {len(x_test)} held-out images; "
    f"class counts in training: {np.bincount(y_train).tolist()}"
)

# %% [markdown]
# ## 2. Train the MiniModel for a few steps in PyTorch
#
# `softmax=False` makes the model return logits, for `cross_entropy`. Thirty Adam steps on batches of 32 take
# the loss well below chance level's `ln 10 ≈ 2.3`. MiniModel's BatchNorm momentum is the Keras tutorial's
# (0.99 in Keras terms, 0.01 in PyTorch's), so after thirty steps its running statistics are still mostly their
# initial values; `torch.optim.swa_utils.update_bn` re-estimates them from a few training batches, the usual
# step after a short or averaged training run.

# %%
STEPS = 30
net = resnet_torch.build("minimodel", softmax=False)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
losses, start, batch = [], time.perf_counter(), 32
net.train()
for step in range(STEPS):
    i = step * batch % len(x_train)
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(
        net(torch.from_numpy(x_train[i : i + batch])), torch.from_numpy(y_train[i : i + batch])
    )
    loss.backward()
    opt.step()
    losses.append(loss.item())
train_seconds = time.perf_counter() - start
torch.optim.swa_utils.update_bn([torch.from_numpy(x_train[i : i + 64]) for i in range(0, 256, 64)], net)
net.eval()
with torch.no_grad():
    accuracy = float((net(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
print(
    f"{STEPS} steps in {train_seconds:.0f} s; loss {losses[0]:.2f} -> {np.mean(losses[-5:]):.2f} (mean of the last 5); "
    f"held-out accuracy {accuracy:.0%} (chance: 10%)"
)
assert np.mean(losses[-5:]) < 0.6 * np.log(10) < losses[0] and accuracy > 0.3

fig, ax = plt.subplots(figsize=(5, 2.5))
ax.plot(losses, "o-", ms=3)
ax.axhline(np.log(10), color="k", ls="--", lw=1, label="chance, ln 10")
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Save it, the PyTorch way and the canonical way
#
# `resnet_torch.save` writes by extension: `.pt` is a plain `state_dict` (it loads back with
# `model.load_state_dict(torch.load(path))`), `.safetensors` the project's canonical checkpoint, which needs no
# framework to read and states the model's config in its metadata. `resnet-parity inspect` shows what a file
# holds.

# %%
resnet_torch.save(net, work / "shapes.pt")
resnet_torch.save(net, work / "shapes.safetensors")
state = torch.load(work / "shapes.pt", weights_only=True)
print(
    f"shapes.pt: {len(state)} entries, "
    f"{sum(k.endswith('num_batches_tracked') for k in state)} of them num_batches_tracked"
)
_ = cli("inspect", "shapes.safetensors", clip=12)

# %% [markdown]
# ## 4. Port with the command line
#
# `resnet-parity convert SRC DST` reads any supported file, detects the naming scheme and the model, infers the
# config from the tensor shapes, validates every tensor and writes the target format through the target
# framework's own API (so a `.weights.h5` loads with `model.load_weights`, a `.pdparams` with `paddle.load`).
# A `.pt` state dict does not record MiniModel's `softmax` switch (it has no weights), so the config read from it
# has the tutorial's default, `softmax: true`; the canonical `.safetensors` above records `false`.

# %%
_ = cli("convert", "shapes.pt", "shapes.weights.h5")
print()
_ = cli("convert", "shapes.pt", "shapes.pdparams")

# %% [markdown]
# ## 5. Port with the Python API
#
# `resnet_<framework>.load(path, **overrides)` builds the model a file describes and loads it strictly;
# overrides set what the weights cannot tell (here `softmax=False`, to compare logits). Any direction works:
# Keras straight from the PyTorch file, Paddle from the canonical one, and back to PyTorch from a `.keras`
# archive that Keras saved.

# %%
ported = {
    "keras, CLI (.weights.h5)": resnet_keras.load(work / "shapes.weights.h5", softmax=False),
    "paddle, CLI (.pdparams)": resnet_paddle.load(work / "shapes.pdparams", softmax=False),
    "keras, API (from .pt)": resnet_keras.load(work / "shapes.pt", softmax=False),
    "paddle, API (from .safetensors)": resnet_paddle.load(work / "shapes.safetensors", softmax=False),
}
resnet_keras.save(ported["keras, API (from .pt)"], work / "shapes.keras")
ported["torch, API (from Keras' .keras)"] = resnet_torch.load(work / "shapes.keras", softmax=False)
for label, model in ported.items():
    print(f"{label:34} -> {type(model).__module__}.{type(model).__name__}")

# %% [markdown]
# ## 6. Do they agree?
#
# First the weights: every canonical tensor exported from each ported model against the trained PyTorch model.
# Porting only renames and transposes, so the difference must be exactly zero. Then the outputs on the 128
# held-out images: the predicted class of every image, the logits, and every probe point inside the network,
# compared layer by layer in execution order by `resnet_core.parity.compare.compare_probes`.

# %%
cfg = resnet_torch.config_of(net)
ref_weights = resnet_torch.export_weights(net)
ref = resnet_torch.probe_outputs(net, x_test)
comparisons, rows = {}, []
for label, model in ported.items():
    f = label.split(",")[0]
    weights = fw[f].export_weights(model)
    weight_diff = max(float(np.abs(weights[n] - ref_weights[n]).max()) for n in ref_weights)
    got = fw[f].probe_outputs(model, x_test)
    c = compare.compare_probes(cfg, ref, got, label=f"torch vs {label}")
    comparisons[label] = c
    same_class = float((got["output"].argmax(1) == ref["output"].argmax(1)).mean())
    rows.append(
        (
            label,
            f"{weight_diff:g}",
            f"{same_class:.0%}",
            f"{c.by_name()['output'].max_abs:.1e}",
            f"{c.max_error:.1e}",
            "none" if c.passed else c.first_divergence.name,
        )
    )
    assert weight_diff == 0 and same_class == 1.0 and c.passed, c.message()
table(
    [
        "ported model",
        "weights: max abs diff",
        "same predicted class",
        "logits: max abs diff",
        f"worst layer error (tolerance {settings.FORWARD_TOL:g})",
        "first diverging layer",
    ],
    rows,
)
print(comparisons["keras, CLI (.weights.h5)"].message())

# %%
fig, ax = plt.subplots(figsize=(11, 3.2))
for label in ("keras, CLI (.weights.h5)", "paddle, CLI (.pdparams)"):
    errs = comparisons[label].errors
    ax.semilogy([max(e.error, 1e-10) for e in errs], "o-", ms=3, label=f"torch vs {label}")
ax.axhline(settings.FORWARD_TOL, color="k", ls="--", lw=1, label=f"tolerance {settings.FORWARD_TOL:g}")
errs = comparisons["keras, CLI (.weights.h5)"].errors
ticks = [i for i, e in enumerate(errs) if e.stage and e.stage not in ("pool", "logits")] + [len(errs) - 1]
ax.set_xticks(ticks, [f"{errs[i].name}\n({errs[i].stage})" for i in ticks], fontsize=8)
ax.set_ylabel("error (max-abs / max(1, max|ref|))")
ax.set_title("Trained MiniModel, 128 held-out images: error per layer after porting, in execution order")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The error is rounding, ~1e-6: each framework sums in its own order, and the error grows gently with depth
# without ever approaching the tolerance. A porting mistake (a missing transpose, a swapped statistic, the
# `'same'`-padding shift of notebook 02) shows up instead as an error near 1 at the first layer it touches.

# %% [markdown]
# ## 7. The parity report
#
# The comparison above used one trained model and one direction. `resnet-parity report` runs the whole matrix:
# every variant, every direction (`a -> b`: seeded random weights **and random BN statistics** in `a`, ported
# into `b`; the six between PyTorch, Keras and Paddle, and Keras on JAX and on PyTorch, each in its own worker
# process, to and from PyTorch and Paddle), at several levels (structure, eval and train-mode forward,
# gradients, SGD and Adam steps), and writes `report.md` with one per-layer error plot per pair of frameworks
# (per direction where the two directions differ). `./run.sh report` runs all of it; `--quick` keeps the
# structure and forward levels, and `--model minimodel` the one model:

# %%
_ = cli("report", "--quick", "--model", "minimodel", "--out", "parity-report")
report_md = (work / "parity-report" / "report.md").read_text()
assert "all levels pass" in report_md

# %% [markdown]
# What it writes: `parity-report/report.md` (the same table, with versions and the definition of each number)
# and the plots. Here are the start of the Markdown and the per-layer plot of one direction.

# %%
from IPython.display import Image

lines = report_md.splitlines()
print(
    "\n".join(
        lines[:4]
        + [
            "",
            *lines[lines.index("| variant | direction | level | input | device | max error | tolerance | result |") :][
                :5
            ],
            "...",
        ]
    )
)
print("\nfiles:", ", ".join(sorted(p.name for p in (work / "parity-report").iterdir())))
# one plot per pair of frameworks (`torch-and-keras`) where both directions gave the same numbers, else per direction
(plot,) = sorted((work / "parity-report").glob("per-layer-error-torch-*-keras.png"))[:1]
display(Image(filename=str(plot), width=700))

# %%
work_dir.cleanup()
