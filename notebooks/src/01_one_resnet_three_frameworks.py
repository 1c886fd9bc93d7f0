# %% [markdown]
# # 01 · One ResNet, three frameworks
#
# The same networks, ResNet-18 with its CIFAR or ImageNet stem and the Keras tutorial's pre-activation
# **MiniModel**, built in **PyTorch**, **Keras 3** and **PaddlePaddle** from one specification
# (`resnet_core.spec`). This notebook
#
# 1. builds every variant in every framework,
# 2. counts the parameters the project's way and each framework's own way, and explains why the totals differ,
# 3. follows the tensor shape through every stage, as a table and as a figure,
# 4. shows each framework's own model summary.
#
# Nothing here defines a model: every network comes from `resnet_torch`, `resnet_keras` and `resnet_paddle`.
# Every claim in the text is checked by an `assert` in the cell below it, so the notebook fails in CI the day a
# claim stops being true. It runs on the CPU in well under a minute.

# %%
# Before the first framework import: quiet the C++ start-up logs, and let idle OpenMP threads sleep, or
# PyTorch's spin-waiting threads fight TensorFlow's and Paddle's pools (10x slower steps on 2 cores).
# The settings and their reasons live in one place, resnet_core.runtime.ENVIRONMENT.
from resnet_core import runtime

runtime.set_environment()

import contextlib
import io
import warnings

warnings.filterwarnings("ignore", message="No ccache found")

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from resnet_core import frameworks, spec
from resnet_core.weights import random_input

# load_all imports Paddle before TensorFlow, the safe order in one process (notebook 02 shows why it matters).
fw = frameworks.load_all(["torch", "keras", "paddle"])
import keras
import paddle
import torch

plt.rcParams.update({"figure.dpi": 72, "font.size": 9})
print(
    f"torch {torch.__version__} | keras {keras.__version__} on {keras.backend.backend()} | paddle {paddle.__version__}"
)


def reference_size(vid):
    """The variant's reference size (square here), from the variant table."""
    return spec.variant(vid).reference_size[0]


def table(headers, rows):
    """Show rows as a Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    display(Markdown("\n".join(lines)))


# %% [markdown]
# ## 1. Build every variant in every framework
#
# `resnet_<framework>.build(model, **kwargs)` takes the same keyword arguments everywhere; they are validated
# by the one specification, so a bad option gets the same message in all three. The variants below are
# `spec.VARIANTS`, the ones the test-suite and the parity report run. PyTorch and Paddle models take NCHW input,
# the Keras models NHWC (Keras' native layout on the CPU).

# %%
VARIANTS = [(v.model, dict(v.kwargs), v.id) for v in spec.VARIANTS.values()]
nets = {}
for model, kwargs, vid in VARIANTS:
    for name, mod in fw.items():
        nets[vid, name] = mod.build(model, **kwargs)

table(
    ["variant", "builder call", *fw],
    [
        (
            vid,
            f"`build({model!r}, **{kwargs})`",
            *(f"`{type(nets[vid, n]).__module__}.{type(nets[vid, n]).__name__}`" for n in fw),
        )
        for model, kwargs, vid in VARIANTS
    ],
)

# %% [markdown]
# ## 2. Parameter counts, side by side
#
# The specification counts two things separately: **trainable parameters** (conv and linear weights and
# biases, BN gamma and beta) and **BN moving statistics** (running mean and variance, which are state, not
# parameters). Each package's `count_params(net)` returns exactly these two numbers. The frameworks' own
# counters each add up something different:


# %%
def n_batchnorms(cfg):
    return sum(isinstance(layer, spec.BatchNorm) for layer in spec.layers(cfg))


def paddle_summary_total(net, cfg, size):
    with contextlib.redirect_stdout(io.StringIO()):  # the table itself is shown in section 4
        return int(paddle.summary(net, (1, cfg.in_channels, size, size))["total_params"])


counts, rows = {}, []
for model, kwargs, vid in VARIANTS:
    cfg = spec.make_config(model, **kwargs)
    size = reference_size(vid)
    t, k, p = nets[vid, "torch"], nets[vid, "keras"], nets[vid, "paddle"]
    c = {
        "spec": spec.counts(cfg),
        "project": {name: fw[name].count_params(nets[vid, name]) for name in fw},
        "torch parameters()": sum(x.numel() for x in t.parameters()),
        "torch state_dict()": sum(x.numel() for x in t.state_dict().values()),
        "keras count_params()": k.count_params(),
        "paddle parameters()": int(sum(x.numel() for x in p.parameters())),
        "paddle.summary total": paddle_summary_total(p, cfg, size),
        "batchnorms": n_batchnorms(cfg),
    }
    counts[vid] = c
    native = [k_ for k_ in c if " " in k_]
    rows.append((vid, f"{c['spec'].trainable:,}", f"{c['spec'].bn_statistics:,}", *(f"{c[n]:,}" for n in native)))

table(["variant", "spec: trainable", "spec: BN statistics", *native], rows)

# %% [markdown]
# Why the totals differ:
#
# * **PyTorch `parameters()`** lists only `nn.Parameter`s. BN running statistics are *buffers*, so the sum is
#   the trainable count; torchvision's published 11,689,512 for ResNet-18 is this number.
# * **PyTorch `state_dict()`** holds the buffers too, **plus one `num_batches_tracked` integer per BatchNorm**
#   (20 in ResNet-18, 25 in MiniModel), which no other framework has. The project's checkpoints drop it.
# * **Keras `count_params()`** counts every weight, trainable or not: `moving_mean` and `moving_variance` are
#   non-trainable weights, so it reports trainable + statistics.
# * **Paddle `parameters()`** also returns BN's `_mean` and `_variance`: they are parameters with
#   `trainable=False`. `paddle.summary` reports the same total and then splits it.
# * The project's `count_params` agrees with the specification in all three frameworks.

# %%
for vid, c in counts.items():
    s = c["spec"]
    assert all(got == s for got in c["project"].values()), (vid, c["project"])
    assert c["torch parameters()"] == s.trainable
    assert c["torch state_dict()"] == s.trainable + s.bn_statistics + c["batchnorms"]
    assert c["keras count_params()"] == s.trainable + s.bn_statistics
    assert c["paddle parameters()"] == s.trainable + s.bn_statistics == c["paddle.summary total"]
print("every counter differs from the specification exactly as explained above")

# %% [markdown]
# Where do the variants' counts differ? Comparing the canonical tensor lists of the specification shows it:
# the ImageNet stem has a 7×7 first convolution and a 1000-way classifier, and `shortcut_bias=True` adds a
# bias to the three 1×1 projection convolutions. d2l's ResNet-18 (`resnet18-d2l`: one input channel for
# Fashion-MNIST, 10 classes) differs from the ImageNet-stem network of the same size in two ways: every
# convolution keeps PyTorch's default bias (`conv_bias=True`, `shortcut_bias=True`), and its 1×1 shortcut
# convolutions have no BatchNorm after them (`shortcut_bn=False`).


# %%
def tensor_sizes(model, **kwargs):
    return {p.name: int(np.prod(p.shape)) for p in spec.param_specs(spec.make_config(model, **kwargs))}


base = tensor_sizes("resnet18", stem="cifar")
for label, other in [
    ("imagenet stem, 1000 classes", tensor_sizes("resnet18", stem="imagenet", num_classes=1000)),
    ("shortcut_bias=True", tensor_sizes("resnet18", stem="cifar", shortcut_bias=True)),
]:
    diff = {
        n: other.get(n, 0) - base.get(n, 0) for n in base.keys() | other.keys() if other.get(n, 0) != base.get(n, 0)
    }
    print(f"{label}: {sum(diff.values()):+,} parameters = " + ", ".join(f"{n} {d:+,}" for n, d in sorted(diff.items())))

d2l, same_size = (
    tensor_sizes("resnet18", **spec.variant("resnet18-d2l").kwargs),
    tensor_sizes("resnet18", stem="imagenet", in_channels=1),
)
added, dropped = sorted(d2l.keys() - same_size.keys()), sorted(same_size.keys() - d2l.keys())
assert all(n.endswith(".bias") for n in added) and all(".downsample.1." in n for n in dropped)
print(
    f"d2l vs imagenet stem with 1 channel and 10 classes: +{sum(d2l[n] for n in added):,} in {len(added)} conv biases, "
    f"-{sum(same_size[n] for n in dropped):,} in the shortcut BNs {sorted({n.rsplit('.', 1)[0] for n in dropped})}"
)

# %% [markdown]
# ## 3. The shape after every stage
#
# Each package's `probe_outputs(net, x)` runs the network on one NCHW batch (the Keras package transposes to
# NHWC and back) and returns the output of every canonical probe point; the coarse stages are the probes with a
# `stage`. The specification computes the same shapes with no framework at all (`spec.stage_shapes`).

# %%
SHOWN = [v for v in VARIANTS if v[2] != "resnet18-cifar-shortcut_bias"]  # shortcut_bias changes no shape
shapes, rows = {}, []
for model, kwargs, vid in SHOWN:
    cfg = spec.make_config(model, **kwargs)
    size = reference_size(vid)
    x = random_input(cfg, 1, size, size)
    want = spec.stage_shapes(cfg, size, size)
    got = {}
    for name in fw:
        outs = fw[name].probe_outputs(nets[vid, name], x)
        got[name] = {p.stage: tuple(outs[p.name].shape[1:]) for p in spec.stages(cfg)}
    shapes[vid] = size, want
    for stage, w in want.items():
        same = all(got[n][stage] == w for n in fw)
        rows.append(
            (
                vid if stage == next(iter(want)) else "",
                stage,
                "×".join(map(str, w)),
                *("×".join(map(str, got[n][stage])) for n in fw),
                "yes" if same else "**NO**",
            )
        )
        assert same, (vid, stage, {n: got[n][stage] for n in fw})

table(["variant", "stage", "spec (C×H×W)", *(f"{n} (C×H×W)" for n in fw), "all equal"], rows)

# %%
fig, axes = plt.subplots(1, len(shapes), figsize=(12, 3.2))
for ax, (vid, (size, st)) in zip(axes, shapes.items()):
    names = [s for s in st if s != "logits"]
    channels = [st[s][0] for s in names]
    side = [st[s][1] for s in names]
    bars = ax.bar(names, channels, color="tab:blue", alpha=0.6, label="channels")
    ax.bar_label(bars, fontsize=8, color="tab:blue")
    ax.set_yscale("log", base=2)
    ax.set_ylim(2**3, 2**11)
    ax.set_ylabel("channels", color="tab:blue")
    ax.tick_params(axis="x", rotation=45)
    ax2 = ax.twinx()
    ax2.plot(names, side, "o-", color="tab:red", label="height = width")
    ax2.set_yscale("log", base=2)
    ax2.set_ylim(2**-1, 2**7)
    ax2.set_ylabel("spatial side", color="tab:red")
    for i, s in enumerate(names):
        ax2.annotate(
            f"{st[s][1]}", (i, side[i]), textcoords="offset points", xytext=(5, -11), fontsize=8, color="tab:red"
        )
    ax.set_title(f"{vid}, input {size}×{size}", pad=12)
fig.suptitle("Channels double while the spatial side halves, stage after stage")
fig.tight_layout()
plt.show()

# %% [markdown]
# ResNet-18 accepts any input at least as large as its total stride (8 for the CIFAR stem, 32 for the
# ImageNet stem), and odd sizes round down at every stride-2 step. MiniModel's `AveragePooling2D(4)` followed by
# a `Dense(256 → classes)` fixes its input to 32×32: anything else is refused with a one-line error.

# %%
cfg = spec.make_config("resnet18", stem="imagenet")
x = random_input(cfg, 1, 45, 37)
outs = fw["paddle"].probe_outputs(fw["paddle"].build("resnet18", stem="imagenet"), x)
odd = {p.stage: tuple(outs[p.name].shape[1:]) for p in spec.stages(cfg)}
assert odd == spec.stage_shapes(cfg, 45, 37)
print("resnet18 imagenet stem, 45×37 input:", {k: "×".join(map(str, v)) for k, v in odd.items()})

try:
    nets["minimodel", "torch"](torch.zeros(1, 3, 64, 64))
except ValueError as e:
    print("minimodel, 64×64 input:", e)
else:
    raise AssertionError("MiniModel accepted a 64×64 input")

# %% [markdown]
# ## 4. Each framework's own model summary
#
# The three frameworks describe a model very differently (ResNet-18, CIFAR stem; long listings are clipped):
#
# * **PyTorch** has no summary with shapes: `print(model)` shows the module tree, with each module's
#   constructor arguments and no counts or shapes (shapes depend on the input, which a module never sees).
# * **Keras** `model.summary()` knows the graph: output shapes (here `None` for height and width, because the
#   ResNet graph is built for any input size), parameter counts and the layer each one is connected to.
# * **Paddle** `paddle.summary(model, input_size)` runs a forward pass on a dummy input to find shapes, then
#   lists every layer with an auto-numbered type name (`Conv2D-1`, ...), not the attribute name.


# %%
def clip(text, head=12, tail=9):
    lines = text.rstrip().splitlines()
    if len(lines) <= head + tail + 1:
        return "\n".join(lines)
    return "\n".join(lines[:head] + [f"    ... {len(lines) - head - tail} more lines ..."] + lines[-tail:])


vid = "resnet18-cifar"
torch_text = str(nets[vid, "torch"])
keras_lines = []
nets[vid, "keras"].summary(print_fn=lambda line, **_: keras_lines.append(line), line_length=96)
keras_text = "\n".join(keras_lines)
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    paddle.summary(nets[vid, "paddle"], (1, 3, 32, 32))
paddle_text = buf.getvalue()

for title, text in [
    ("PyTorch: print(model)", torch_text),
    ("Keras: model.summary()", keras_text),
    ("Paddle: paddle.summary(model, (1, 3, 32, 32))", paddle_text),
]:
    print(f"==== {title} ({len(text.splitlines())} lines) ====")
    print(clip(text))
    print()

# %% [markdown]
# The totals each summary prints repeat section 2: Keras and Paddle report trainable + BN statistics as the
# total and split them into trainable and non-trainable; PyTorch prints no count at all.

# %%
for title, text in [("keras", keras_text), ("paddle", paddle_text)]:
    totals = [line.strip(" │") for line in text.splitlines() if "params:" in line.lower()]
    print(f"{title:7}", " | ".join(totals))
s = counts[vid]["spec"]
assert f"{s.trainable + s.bn_statistics:,}" in keras_text and f"{s.trainable + s.bn_statistics:,}" in paddle_text
assert f"{s.trainable:,}" in keras_text and f"{s.trainable:,}" in paddle_text
