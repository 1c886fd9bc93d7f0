# %% [markdown]
# # 02 · The framework differences, measured
#
# `docs/framework-differences.md` lists every way PyTorch, Keras 3 and PaddlePaddle differ that matters when
# the same network must give the same numbers. This notebook takes the catalog **row by row, in its order**: a
# tiny experiment, **the number it measures**, and how the project deals with it. Pictures where they say more
# than a number: an error map for the padding shift, a bar chart of the error per layer, the Adam step against
# the gradient, the running-variance gap against the batch size.
#
# The experiments use the frameworks' own layers (a convolution, a BatchNorm, an optimizer) where one layer
# shows the point, and the project's models where the question is *where in the network* it shows up. Every
# claim is backed by an `assert`, so CI fails the day a framework changes behaviour; the last cell checks that
# every row of the catalog got a number here. CPU only, about a minute.

# %%
import os

# Before the first framework import: quiet the C++ start-up logs, and let idle OpenMP threads sleep, or
# PyTorch's spin-waiting threads fight TensorFlow's and Paddle's pools (10x slower steps on 2 cores).
# The settings and their reasons live in one place, resnet_core.runtime.ENVIRONMENT.
from resnet_core import runtime

runtime.set_environment()

import math
import pathlib
import subprocess
import sys
import time
import warnings

warnings.filterwarnings("ignore", message="No ccache found")
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from resnet_core import frameworks, names, spec
from resnet_core.parity import compare, settings
from resnet_core.weights import random_input, random_weights

fw = frameworks.load_all(["torch", "keras", "paddle"])  # Paddle first: see "Import order" below
import keras
import paddle
import tensorflow as tf
import torch

plt.rcParams.update({"figure.dpi": 72, "font.size": 9})
rng = np.random.default_rng(0)


def catalog_rows(path):
    """The first column of the catalog's first table: one entry per difference between the frameworks.

    (The second table, between the Keras backends, needs one process per backend: test_keras_backends.py.)"""
    rows = []
    for line in path.read_text().split("## Between the Keras 3 backends")[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and not set(line) <= set("|-: ") and cells[0] != "Difference":
            rows.append(cells[0])
    return rows


ROOT = next(
    p for p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents] if (p / "docs" / "framework-differences.md").is_file()
)
CATALOG = catalog_rows(ROOT / "docs" / "framework-differences.md")
measured = []  # (catalog row, what was measured, the number): the summary table at the end


def record(row, what, value):
    assert row in CATALOG, f"{row!r} is not a row of docs/framework-differences.md: {CATALOG}"
    measured.append((row, what, value))
    print(f"{what}: {value}")


def table(headers, rows):
    """Show rows as a Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    display(Markdown("\n".join(lines)))


def keras_conv(weight_oihw, stride, padding, x_nchw):
    """One Keras Conv2D with a PyTorch-layout kernel, run on an NCHW array; returns NCHW."""
    conv = keras.layers.Conv2D(
        weight_oihw.shape[0], weight_oihw.shape[2:], strides=stride, padding=padding, use_bias=False
    )
    conv.build((None, None, None, weight_oihw.shape[1]))
    conv.kernel.assign(names.to_framework("keras", "conv.weight", weight_oihw))
    return names.nhwc_to_nchw(keras.ops.convert_to_numpy(conv(names.nchw_to_nhwc(x_nchw))))


def torch_conv(weight_oihw, stride, padding, x_nchw):
    return torch.nn.functional.conv2d(
        torch.from_numpy(x_nchw), torch.from_numpy(weight_oihw), stride=stride, padding=padding
    ).numpy()


print(f"{len(CATALOG)} rows in the catalog")

# %% [markdown]
# Several rows use the same three networks: ResNet-18 (CIFAR stem) built in each framework, with the same
# seeded random weights **and random BN statistics** loaded into all three, and one seeded input batch.

# %%
CFG18 = spec.make_config("resnet18", stem="cifar")
W18 = random_weights(CFG18, seed=1)
X18 = random_input(CFG18, 2, 32, 32, seed=7)
LABELS18 = np.array([3, 8])
nets = {f: fw[f].build("resnet18", stem="cifar") for f in ("torch", "keras", "paddle")}
for f, net in nets.items():
    fw[f].import_weights(net, W18)
probes18 = {f: fw[f].probe_outputs(net, X18) for f, net in nets.items()}  # eval mode, every probe, NCHW

# %% [markdown]
# ## Activation layout
#
# PyTorch and Paddle convolve NCHW tensors, Keras NHWC (its only layout for CPU convolutions). The project's
# Keras models take NHWC like any Keras model and say so when they get something else; `probe_outputs` takes NCHW
# in every framework and transposes for Keras, so the parity suite feeds all three the same array.

# %%
try:
    nets["keras"](X18, training=False)  # an NCHW batch given to the NHWC model
except ValueError as e:
    layout_error = str(e)
else:
    raise AssertionError("the Keras model accepted an NCHW batch")
print("Keras model, NCHW input:", layout_error)
with torch.no_grad():
    logits_t = nets["torch"].eval()(torch.from_numpy(X18)).numpy()
logits_k = keras.ops.convert_to_numpy(nets["keras"](names.nchw_to_nhwc(X18), training=False))
err = compare.probe_error("logits", logits_t, logits_k).error
assert "expects 3 input channels in NHWC" in layout_error and err < settings.FORWARD_TOL
record(
    "Activation layout",
    "ResNet-18 logits, torch on NCHW vs keras on the transposed NHWC batch (scaled error)",
    f"{err:.1e}",
)

# %% [markdown]
# ## Weight layout and names
#
# | tensor | PyTorch | Paddle | Keras |
# |---|---|---|---|
# | conv kernel | `weight` `[out, in, kh, kw]` (OIHW) | `weight`, OIHW | `kernel` `[kh, kw, in, out]` (HWIO) |
# | dense / linear weight | `weight` `[out, in]` | `weight` `[in, out]` | `kernel` `[in, out]` |
# | BN statistics | `running_mean`, `running_var` | `_mean`, `_variance` | `moving_mean`, `moving_variance` |
#
# `resnet_core.names` holds the names and the permutation per role as data. Here they are as each model stores
# them, then the cost of getting a transpose wrong. A `reshape` to the target shape runs without complaint and
# gives garbage, and so does the right shape with the wrong permutation: a 3×3 kernel with swapped kh/kw, or a
# layer with as many inputs as outputs with swapped in/out, keeps its shape, so only a parity check catches it.

# %%
native = {
    "torch": {k: tuple(v.shape) for k, v in nets["torch"].state_dict().items()},
    "paddle": {k: tuple(v.shape) for k, v in nets["paddle"].state_dict().items()},
    "keras": {v.path: tuple(v.shape) for v in nets["keras"].weights},
}
rows = []
for p in spec.param_specs(CFG18):
    if p.name in ("layer1.0.conv1.weight", "layer1.0.bn1.running_var", "fc.weight"):
        cells = [
            f"`{n}` {native[f][n]}"
            for f in ("torch", "paddle", "keras")
            for n in [names.framework_name(f, p.module, p.role)]
        ]
        rows.append((f"`{p.name}`", *cells))
table(["canonical", "torch", "paddle", "keras"], rows)

w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)  # square in/out, so wrong orders still fit
x = rng.standard_normal((1, 8, 10, 10)).astype(np.float32)
ref = torch_conv(w, 1, 1, x)
ports = {
    "transpose(2, 3, 1, 0)  (names.to_framework)": names.to_framework("keras", "conv.weight", w),
    "reshape to HWIO": w.reshape(3, 3, 8, 8),
    "transpose(2, 3, 0, 1)  (in/out swapped)": w.transpose(2, 3, 0, 1),
    "transpose(3, 2, 1, 0)  (kh/kw swapped)": w.transpose(3, 2, 1, 0),
}
rows = []
for label, kernel in ports.items():
    conv = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)
    conv.build((None, None, None, 8))
    conv.kernel.assign(kernel)
    got = names.nhwc_to_nchw(keras.ops.convert_to_numpy(conv(names.nchw_to_nhwc(x))))
    rows.append((label, f"{np.abs(got - ref).max() / np.abs(ref).max():.1e}"))
table(["PyTorch kernel → Keras kernel", "relative error of the conv output"], rows)
assert float(rows[0][1]) < 1e-6 and all(float(r[1]) > 0.1 for r in rows[1:])

lin_w = rng.standard_normal((10, 512)).astype(np.float32)
feat = rng.standard_normal((2, 512)).astype(np.float32)
ref = feat @ lin_w.T
paddle_fc = paddle.nn.Linear(512, 10, bias_attr=False)
paddle_fc.weight.set_value(names.to_framework("paddle", "linear.weight", lin_w))
dense_err = np.abs(paddle_fc(paddle.to_tensor(feat)).numpy() - ref).max() / np.abs(ref).max()
paddle_fc.weight.set_value(lin_w.reshape(512, 10))
reshaped_err = np.abs(paddle_fc(paddle.to_tensor(feat)).numpy() - ref).max() / np.abs(ref).max()
assert dense_err < 1e-6 and reshaped_err > 0.1
record(
    "Weight layout and names", "conv kernel with kh/kw swapped, same shape (relative error of the output)", rows[3][1]
)
record(
    "Weight layout and names",
    "linear weight [out, in] into Paddle's [in, out]: transposed / reshaped (relative error)",
    f"{dense_err:.1e} / {reshaped_err:.1e}",
)

# %% [markdown]
# ## Padding at stride 2 (`'same'`)
#
# PyTorch and Paddle pad a convolution by `padding=p` on **every** side. Keras has no number, only `'valid'` or
# `'same'`, and `'same'` pads the total `max((ceil(n/s) - 1)·s + k - n, 0)` with the odd pixel at the
# **bottom/right**. At stride 1 (odd kernels) that total is `k - 1`, split evenly: identical. At stride 2 with an
# even input, `'same'` pads 0 on top and 1 at the bottom where PyTorch pads 1 and 1: every output window
# moves by one pixel. Odd inputs happen to get a symmetric split.


# %%
def same_pads(n, k, s):
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


w3 = rng.standard_normal((1, 1, 3, 3)).astype(np.float32)
rows = []
for n in range(7, 13):
    x = rng.standard_normal((1, 1, n, n)).astype(np.float32)
    err = np.abs(torch_conv(w3, 2, 1, x) - keras_conv(w3, 2, "same", x)).max()
    rows.append((n, "1 / 1", "{} / {}".format(*same_pads(n, 3, 2)), f"{err:.1e}"))
    assert (err < 1e-5) == (n % 2 == 1), (n, err)
table(["input side", "PyTorch padding=1 (top / bottom)", "Keras 'same' (top / bottom)", "max abs difference"], rows)

# %%
x16 = rng.standard_normal((1, 1, 16, 16)).astype(np.float32)
t_out, k_out = torch_conv(w3, 2, 1, x16)[0, 0], keras_conv(w3, 2, "same", x16)[0, 0]
k_from_torch = torch_conv(w3, 2, 0, np.pad(x16, ((0, 0), (0, 0), (0, 1), (0, 1))))[0, 0]

fig, axes = plt.subplots(1, 3, figsize=(9, 2.8))
for ax, img, title in zip(
    axes, [t_out, k_out, np.abs(t_out - k_out)], ["PyTorch, padding=1", "Keras, padding='same'", "|difference|"]
):
    im = ax.imshow(img, cmap="magma" if title.startswith("|") else "coolwarm")
    ax.set_title(title)
    ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, ax=ax, fraction=0.046)
fig.suptitle("3×3 stride-2 convolution of a 16×16 input: the error map covers every output, not just the border")
fig.tight_layout()
plt.show()
assert np.allclose(k_out, k_from_torch, atol=1e-5)  # 'same' = zero rows/cols at bottom/right only, then 'valid'
record(
    "Padding at stride 2 (`'same'`)",
    "3×3 stride-2 conv, 16×16 input: outputs that differ",
    f"{np.mean(np.abs(t_out - k_out) > 1e-5):.0%} (max abs {np.abs(t_out - k_out).max():.2f})",
)

# %% [markdown]
# **Where it shows in ResNet-18.** The project's Keras model pads explicitly (`ZeroPadding2D(p)` then a
# `'valid'` convolution) wherever the stride is 2 and the padding is not zero. Its private switch
# `_strided_padding="same"` builds the naive version instead, so we can measure what the explicit padding
# saves: load the same random weights (and random BN statistics) into PyTorch and both Keras models, and
# compare every probe with `resnet_core.parity.compare.compare_probes`, which names the first layer out of tolerance.
# With the CIFAR stem the first strided 3×3 convolution is `layer2.0.conv1`; with the ImageNet stem it is the
# 7×7 stride-2 `conv1` itself. The 1×1 stride-2 shortcuts have no padding and are never affected.

# %%
padding_runs = {}
for stem, size in [("cifar", 32), ("imagenet", 224)]:
    cfg = spec.make_config("resnet18", stem=stem)
    w = random_weights(cfg, seed=1)
    x = random_input(cfg, 2, size, size, seed=1)
    ref_net = fw["torch"].build("resnet18", stem=stem)
    fw["torch"].import_weights(ref_net, w)
    ref = fw["torch"].probe_outputs(ref_net, x)
    for mode in ("explicit", "same"):
        k_net = fw["keras"].ResNet18(stem=stem, _strided_padding=mode)
        fw["keras"].import_weights(k_net, w)
        padding_runs[stem, mode] = compare.compare_probes(
            cfg, ref, fw["keras"].probe_outputs(k_net, x), label=f"torch vs keras ({stem} stem, {mode} padding)"
        )
    print(padding_runs[stem, "explicit"].message())
    print(padding_runs[stem, "same"].message().splitlines()[0])

assert padding_runs["cifar", "explicit"].passed and padding_runs["imagenet", "explicit"].passed
assert padding_runs["cifar", "same"].first_divergence.name == "layer2.0.conv1"
assert padding_runs["imagenet", "same"].first_divergence.name == "conv1"
for stem in ("cifar", "imagenet"):
    record(
        "Padding at stride 2 (`'same'`)",
        f"ResNet-18 {stem}: logits error with 'same' / with explicit padding",
        f"{padding_runs[stem, 'same'].by_name()['output'].error:.2e} / "
        f"{padding_runs[stem, 'explicit'].by_name()['output'].error:.1e}",
    )

# %%
fig, axes = plt.subplots(2, 1, figsize=(12, 5.5), sharey=True)
for ax, stem in zip(axes, ("cifar", "imagenet")):
    for mode, color in (("same", "tab:red"), ("explicit", "tab:green")):
        errs = padding_runs[stem, mode].errors
        ax.bar(
            np.arange(len(errs)) + (0.2 if mode == "explicit" else -0.2),
            [max(e.error, 1e-9) for e in errs],
            width=0.4,
            color=color,
            label=f"Keras {mode!r} padding",
        )
    ax.axhline(settings.FORWARD_TOL, color="k", ls="--", lw=1, label=f"tolerance {settings.FORWARD_TOL:g}")
    errs = padding_runs[stem, "same"].errors
    first = padding_runs[stem, "same"].first_divergence
    ticks = [i for i, e in enumerate(errs) if (e.stage and e.stage not in ("pool", "logits")) or e is first]
    ax.set_xticks(ticks, [errs[i].name for i in ticks], rotation=30, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("error vs PyTorch")
    ax.set_title(f"ResNet-18, {stem} stem: error per layer (scaled max-abs), in execution order")
axes[0].legend(loc="upper left", fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Max-pool padding value
#
# The ImageNet stem's `MaxPool2d(3, stride=2, padding=1)` pads with `-inf` in PyTorch and Paddle. Keras'
# `MaxPooling2D` has only `'same'` (with the shift above), so the project pads with `ZeroPadding2D(1)`. Zeros
# are not `-inf`, but the pool follows a ReLU: every value is at least 0, so a zero in the padding never wins.


# %%
def torch_pool(a, padding):
    return torch.nn.functional.max_pool2d(torch.from_numpy(a), 3, stride=2, padding=padding).numpy()


x = (rng.standard_normal((1, 1, 8, 8)) - 1.5).astype(np.float32)  # mostly negative, as before a ReLU
zero_padded = lambda a: np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)))
signed_gap = np.abs(torch_pool(x, 1) - torch_pool(zero_padded(x), 0)).max()
relu = np.maximum(x, 0)
relu_gap = np.abs(torch_pool(relu, 1) - torch_pool(zero_padded(relu), 0)).max()
assert signed_gap > 0 and relu_gap == 0
record(
    "Max-pool padding value",
    "zero vs -inf padding: max abs difference on signed input / after ReLU",
    f"{signed_gap:.2f} / {relu_gap:.0f}",
)

# %% [markdown]
# ## BN momentum convention
#
# PyTorch's `momentum=0.1` is the weight of the **new** batch statistic; Keras' and Paddle's `momentum=0.9` is
# the weight of the **old** running value. Same update, opposite numbers, and each framework's default differs
# too (PyTorch 0.1 ≙ Keras 0.99 ≙ Paddle 0.9). `spec.BatchNormSpec` states the PyTorch convention and converts
# with `keras_paddle_momentum = 1 - momentum`. Passing the same number to all three is the classic slip:

# %%
x = (rng.standard_normal((8, 4, 4, 4)) * 2 + 1).astype(np.float32)
batch_mean = x.mean(axis=(0, 2, 3))


def running_mean_after_one_step(framework, momentum):
    if framework == "torch":
        bn = torch.nn.BatchNorm2d(4, momentum=momentum).train()
        bn(torch.from_numpy(x))
        return bn.running_mean.numpy()
    if framework == "paddle":
        bn = paddle.nn.BatchNorm2D(4, momentum=momentum)
        bn.train()
        bn(paddle.to_tensor(x))
        return bn._mean.numpy()
    bn = keras.layers.BatchNormalization(momentum=momentum)
    bn(names.nchw_to_nhwc(x), training=True)
    return keras.ops.convert_to_numpy(bn.moving_mean)


rows = []
ref = running_mean_after_one_step("torch", 0.1)
assert np.allclose(ref, 0.1 * batch_mean, atol=1e-6)
for framework, m in (("keras", 0.9), ("paddle", 0.9), ("keras", 0.1), ("paddle", 0.1)):
    got = running_mean_after_one_step(framework, m)
    rel = np.abs(got - ref).max() / np.abs(ref).max()
    rows.append((framework, m, "PyTorch's 0.1 converted" if m == 0.9 else "the same number, unconverted", f"{rel:.1e}"))
    assert (rel < 1e-5) == (m == 0.9)
table(["framework", "momentum", "", "running mean vs PyTorch momentum=0.1 (relative)"], rows)
record(
    "BN momentum convention", "running mean after one step, momentum passed unconverted (relative error)", rows[-1][-1]
)
print(
    "defaults: torch",
    torch.nn.BatchNorm2d(1).momentum,
    "| keras",
    keras.layers.BatchNormalization().momentum,
    "| paddle",
    paddle.nn.BatchNorm2D(1)._momentum,
)

# %% [markdown]
# ## BN epsilon default
#
# The defaults differ: PyTorch and Paddle use `1e-5`, Keras `1e-3`. Epsilon sits next to the running variance,
# `y = γ (x - μ) / sqrt(σ² + ε) + β`, so it matters most for channels with a small variance. The specification
# fixes it per model: ResNet-18 uses PyTorch's `1e-5`, MiniModel the Keras tutorial's `1e-3`, and every
# framework is built with the stated value. Here is the cost of trusting a default, in eval mode, per channel:

# %%
variances = np.logspace(-4, 1, 6).astype(np.float32)
x = rng.standard_normal((4, len(variances), 3, 3)).astype(np.float32)


def bn_eval(eps, framework):
    if framework == "torch":
        bn = torch.nn.BatchNorm2d(len(variances), eps=eps).eval()
        bn.running_var.copy_(torch.from_numpy(variances))
        return bn(torch.from_numpy(x)).detach().numpy()
    bn = keras.layers.BatchNormalization(epsilon=eps)
    bn.build((None, 3, 3, len(variances)))
    bn.moving_variance.assign(variances)
    return names.nhwc_to_nchw(keras.ops.convert_to_numpy(bn(names.nchw_to_nhwc(x), training=False)))


ref = bn_eval(1e-5, "torch")
keras_default = bn_eval(keras.layers.BatchNormalization().epsilon, "keras")
keras_stated = bn_eval(1e-5, "keras")
per_channel = np.abs(keras_default - ref).max(axis=(0, 2, 3)) / np.abs(ref).max(axis=(0, 2, 3))
table(
    ["running variance", *[f"{v:g}" for v in variances]],
    [["relative error, Keras default ε=1e-3"] + [f"{e:.1e}" for e in per_channel]],
)
assert np.abs(keras_stated - ref).max() < 1e-5 and per_channel[0] > 0.5
record(
    "BN epsilon default",
    "eval BN, Keras default ε vs PyTorch's, channel with variance 1e-4 / 1 (relative)",
    f"{per_channel[0]:.2f} / {per_channel[4]:.1e}",
)

# %% [markdown]
# ## BN running variance (biased vs unbiased)
#
# In training mode all three normalise with the **biased** batch variance (divide by N). But the running
# variance PyTorch keeps for inference is updated with the **unbiased** one (divide by N - 1); Keras and
# Paddle store the biased one. N is the number of values per channel, batch × height × width, so the gap
# `N/(N-1)` is largest deep in the network on small batches: ResNet-18's layer4 on CIFAR sees 4×4 maps, so a
# batch of 2 gives N = 32; at 2×2 it is N = 8.


# %%
def running_var_after_one_step(framework, x):
    c = x.shape[1]
    if framework == "torch":
        bn = torch.nn.BatchNorm2d(c, momentum=1.0).train()  # momentum 1: the running value = this batch's
        bn(torch.from_numpy(x))
        return bn.running_var.numpy()
    if framework == "paddle":
        bn = paddle.nn.BatchNorm2D(c, momentum=0.0)
        bn.train()
        bn(paddle.to_tensor(x))
        return bn._variance.numpy()
    bn = keras.layers.BatchNormalization(momentum=0.0)
    bn(names.nchw_to_nhwc(x), training=True)
    return keras.ops.convert_to_numpy(bn.moving_variance)


rows, ns, gaps = [], [], []
for batch, side in [(2, 2), (2, 4), (8, 4), (32, 8)]:
    x = rng.standard_normal((batch, 16, side, side)).astype(np.float32)
    t, k, p = (running_var_after_one_step(f, x) for f in ("torch", "keras", "paddle"))
    n = batch * side * side
    gap = float(np.median(t / k)) - 1
    assert np.allclose(t / k, n / (n - 1), rtol=1e-4) and np.allclose(k, p, rtol=1e-5)
    ns.append(n), gaps.append(gap)
    rows.append((f"{batch}×{side}×{side}", n, f"{gap:.2e}", f"{1 / (n - 1):.2e}"))
table(["batch × H × W", "N per channel", "torch / keras - 1 (measured)", "1/(N-1)"], rows)
record(
    "BN running variance (biased vs unbiased)",
    "torch/keras running variance - 1 at N = 8 (batch 2, 2×2)",
    f"{gaps[0]:.3f}",
)

fig, ax = plt.subplots(figsize=(5, 2.8))
ax.loglog(ns, gaps, "o-", label="measured torch / keras - 1")
ax.loglog(ns, [1 / (n - 1) for n in ns], "k--", lw=1, label="1 / (N - 1)")
ax.set_xlabel("values per channel N = batch × H × W")
ax.set_ylabel("running-variance gap")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The project keeps each framework's own statistics update (changing it would mean rewriting BatchNorm), and the
# parity report states the convention per framework (`resnet_core.parity.BN_RUNNING_VAR`) and brings each
# running-variance increment to the unbiased convention before comparing after a training step.

# %% [markdown]
# ## BN momentum precision (Paddle)
#
# Paddle hands the BN momentum to its kernel as a float32 attribute, even when the model is float64: `0.9`
# becomes `0.89999997615814`. In a float64 comparison (the parity suite compares training steps in float64)
# Paddle's running statistics therefore carry a small, systematic error, relative to the increment:
# `(1 - m₃₂) / (1 - m) - 1`.

# %%
rows = []
for m in (0.9, 0.99):  # ResNet-18 and MiniModel, in Paddle's convention
    bn = paddle.nn.BatchNorm2D(4, momentum=m)
    bn.to(dtype="float64")
    old = np.array([0.5, -0.3, 0.2, 0.1])
    bn._mean.set_value(old)
    x = rng.standard_normal((2, 4, 5, 5))
    bn.train()
    bn(paddle.to_tensor(x))
    exact = (1 - m) * (x.mean(axis=(0, 2, 3)) - old)
    rel = np.abs((bn._mean.numpy() - old) - exact).max() / np.abs(exact).max()
    predicted = (1 - float(np.float32(m))) / (1 - m) - 1
    assert math.isclose(rel, abs(predicted), rel_tol=1e-3), (rel, predicted)
    rows.append((m, f"{np.float32(m):.14f}", f"{rel:.2e}", f"{abs(predicted):.2e}"))
table(["momentum", "as float32", "increment error, measured (float64 model)", "predicted"], rows)
record(
    "BN momentum precision (Paddle)",
    "float64 running-mean increment error at momentum 0.9 / 0.99",
    f"{float(rows[0][2]):.1e} / {float(rows[1][2]):.1e}",
)

# %% [markdown]
# ## Frozen BN (`trainable=False`)
#
# Freezing a BatchNorm means different things. In Keras 3, a BN layer with `trainable=False` runs in
# **inference mode** (moving statistics) even when called with `training=True`, the fine-tuning convention. In
# PyTorch and Paddle, freezing the parameters (`requires_grad_(False)`, `stop_gradient=True`) leaves the layer
# in training mode: it still normalises with the batch statistics. The models here never freeze a BN, but a
# fine-tuning port must switch PyTorch/Paddle BN layers to eval mode to match.

# %%
x = (rng.standard_normal((16, 4)) * 3 + 2).astype(np.float32)  # far from the initial statistics 0 and 1
k_bn = keras.layers.BatchNormalization()
k_bn.build((None, 4))
k_bn.trainable = False
t_bn = torch.nn.BatchNorm1d(4).requires_grad_(False).train()
p_bn = paddle.nn.BatchNorm1D(4)
for prm in p_bn.parameters():
    prm.stop_gradient = True
p_bn.train()
outs = {
    "keras": keras.ops.convert_to_numpy(k_bn(x, training=True)),
    "torch": t_bn(torch.from_numpy(x)).numpy(),
    "paddle": p_bn(paddle.to_tensor(x)).numpy(),
}
table(
    ["framework, frozen BN, training mode", "mean of the output", "normalised with"],
    [
        (f, f"{o.mean():.3f}", "moving statistics" if abs(o.mean()) > 0.5 else "batch statistics")
        for f, o in outs.items()
    ],
)
gap = np.abs(outs["keras"] - outs["torch"]).max() / np.abs(outs["torch"]).max()
assert (
    abs(outs["torch"].mean()) < 1e-5
    and abs(outs["paddle"].mean()) < 1e-5
    and abs(outs["keras"].mean() - x.mean()) < 1e-2
)
record("Frozen BN (`trainable=False`)", "frozen BN in training mode, keras vs torch output (relative)", f"{gap:.2f}")

# %% [markdown]
# ## `num_batches_tracked`
#
# PyTorch's BN keeps one more buffer, an int64 count of the batches seen, used only when `momentum=None`
# (cumulative averaging). It lives in `state_dict()` next to the statistics; Keras and Paddle have no such thing.
# It is not a canonical tensor: `export_weights` leaves it out, and the converter ignores it when it reads a
# PyTorch file.

# %%
net = fw["torch"].build("resnet18")
tracked = {k: v for k, v in net.state_dict().items() if k.endswith("num_batches_tracked")}
fw["torch"].probe_outputs(net, X18, training=True)  # one training-mode forward pass
after = {int(v) for k, v in net.state_dict().items() if k.endswith("num_batches_tracked")}
exported = fw["torch"].export_weights(net)
assert len(tracked) == sum(isinstance(layer, spec.BatchNorm) for layer in spec.layers(CFG18)) == 20
assert {v.dtype for v in tracked.values()} == {torch.int64} and after == {1}
assert not any(k.endswith("num_batches_tracked") for k in exported) and len(exported) == len(spec.param_specs(CFG18))
print(f"state_dict: {len(net.state_dict())} entries; export_weights: {len(exported)} canonical tensors")
record(
    "`num_batches_tracked`",
    "ResNet-18: int64 buffers in torch's state_dict (value after one training pass); in export_weights",
    f"{len(tracked)} (1); 0",
)

# %% [markdown]
# ## Parameter counting
#
# Notebook 01 shows the counters side by side; in one line each, for MiniModel (4,368,714 trainable, 5,824 BN
# statistics, 25 BatchNorms): PyTorch `parameters()` counts trainable only, `state_dict()` adds the statistics
# and one `num_batches_tracked` per BatchNorm, Keras `count_params()` and Paddle `parameters()` add the
# statistics.

# %%
cfg = spec.make_config("minimodel")
c = spec.counts(cfg)
t, k, p = (fw[f].build("minimodel") for f in ("torch", "keras", "paddle"))
native_counts = {
    "torch parameters()": sum(v.numel() for v in t.parameters()),
    "torch state_dict()": sum(v.numel() for v in t.state_dict().values()),
    "keras count_params()": k.count_params(),
    "paddle parameters()": int(sum(v.numel() for v in p.parameters())),
}
table(
    ["counter", "total", "minus spec trainable"],
    [(n, f"{v:,}", f"{v - c.trainable:+,}") for n, v in native_counts.items()],
)
assert native_counts["torch parameters()"] == c.trainable
assert native_counts["keras count_params()"] == native_counts["paddle parameters()"] == c.trainable + c.bn_statistics
assert native_counts["torch state_dict()"] == c.trainable + c.bn_statistics + 25
record(
    "Parameter counting",
    "MiniModel, largest minus smallest native total",
    f"{native_counts['torch state_dict()'] - c.trainable:,}",
)

# %% [markdown]
# ## Flatten order
#
# `flatten` of an NCHW tensor orders the features (c, h, w); Keras' `Flatten` of NHWC orders them (h, w, c). A
# network that flattens a 4×4 map into a dense layer would need that layer's weight rows permuted when ported.
# Both models here pool to 1×1 first, so the orders coincide and the fc/Dense weights port with a plain
# transpose: the `avgpool` outputs and the logits above agree.

# %%
feat_nchw = rng.standard_normal((1, 16, 4, 4)).astype(np.float32)
dense = rng.standard_normal((16 * 4 * 4, 10)).astype(np.float32)
ref = feat_nchw.reshape(1, -1) @ dense
naive = names.nchw_to_nhwc(feat_nchw).reshape(1, -1) @ dense
fixed = names.nchw_to_nhwc(feat_nchw).reshape(1, -1) @ dense.reshape(16, 4, 4, 10).transpose(1, 2, 0, 3).reshape(-1, 10)
assert np.allclose(fixed, ref, atol=1e-4)
pooled = compare.probe_error("avgpool", probes18["torch"]["avgpool"], probes18["keras"]["avgpool"])
assert probes18["torch"]["avgpool"].shape[2:] == (1, 1) and pooled.error < settings.FORWARD_TOL
record(
    "Flatten order",
    "dense after Flatten of a 4×4 map, rows not permuted (relative error)",
    f"{np.abs(naive - ref).max() / np.abs(ref).max():.2f}",
)
record("Flatten order", "ResNet-18 avgpool (1×1) output, torch vs keras (scaled error)", f"{pooled.error:.1e}")

# %% [markdown]
# ## Default dtypes
#
# NumPy creates `float64`; the three frameworks default to `float32`, but `torch.from_numpy` and
# `paddle.to_tensor` keep a float64 array's dtype, and a float32 layer then fails deep inside ("expected scalar
# type Double"); a Keras layer casts to its `floatx()` silently. The project's models apply one rule instead
# (`spec.check_input`): the input's dtype must be the weights', else a `TypeError` saying expected vs received,
# the same in all three. `probe_outputs` casts its NCHW array to float32 itself, and weight files are read into
# float32. What float32 costs against a float64 reference is the floor every tolerance in the parity suite is
# built on:

# %%
x64 = X18.astype(np.float64)
layers_fed = {
    "torch": lambda: torch.nn.Conv2d(3, 4, 3)(torch.from_numpy(x64)),
    "paddle": lambda: paddle.nn.Conv2D(3, 4, 3)(paddle.to_tensor(x64)),
    "keras": lambda: keras.layers.Conv2D(4, 3)(names.nchw_to_nhwc(x64)),
}
models_fed = {
    "torch": lambda: nets["torch"].eval()(torch.from_numpy(x64)),
    "paddle": lambda: (nets["paddle"].eval(), nets["paddle"](paddle.to_tensor(x64)))[1],
    "keras": lambda: nets["keras"](names.nchw_to_nhwc(x64), training=False),
}


def fed(feed):
    try:
        out = feed()
        return "accepted", str(out.dtype).replace("torch.", "").replace("paddle.", "")
    except (RuntimeError, ValueError, TypeError) as e:
        return "refused", f"{type(e).__name__}: {str(e).splitlines()[0][:60]}"


rows = [(f, "a conv layer", *fed(layers_fed[f])) for f in layers_fed]
rows += [(f, "our model", *fed(models_fed[f])) for f in models_fed]
table(["framework", "float64 input into", "result", "output dtype / error"], rows)
assert [r[2] for r in rows] == ["refused", "refused", "accepted", "refused", "refused", "refused"]
assert all(r[3].startswith("TypeError: resnet18 expects float32 input") for r in rows[3:])
print(
    "default float dtype: torch",
    torch.get_default_dtype(),
    "| keras",
    keras.config.floatx(),
    "| paddle",
    paddle.get_default_dtype(),
    "| numpy",
    np.array(1.0).dtype,
)

t64 = fw["torch"].cast_model(nets["torch"], "float64")
with torch.no_grad():
    out64 = t64.eval()(torch.from_numpy(x64)).numpy()
floor = {f: compare.probe_error("logits", out64, probes18[f]["output"]).error for f in nets}
record(
    "Default dtypes",
    "float32 logits vs a float64 reference, torch / keras / paddle (scaled)",
    " / ".join(f"{floor[f]:.1e}" for f in nets),
)
assert max(floor.values()) < settings.FORWARD_TOL

# %% [markdown]
# ## NaN input
#
# One NaN pixel turns every logit of its sample into NaN in PyTorch and Keras. Paddle's ReLU maps NaN to 0, so
# the NaN is erased at the first ReLU and Paddle's logits come out finite (and wrong). A real framework
# difference, left as it is: check inputs with `np.isfinite` before trusting Paddle's output.

# %%
x_nan = X18.copy()
x_nan[0, :, 5, 7] = np.nan
nan_out = {f: fw[f].probe_outputs(net, x_nan)["output"] for f, net in nets.items()}
rows = [(f, int(np.isnan(v[0]).sum()), int(np.isnan(v[1]).sum())) for f, v in nan_out.items()]
table(["framework", "NaN logits: sample with a NaN pixel", "NaN logits: the clean sample"], rows)
assert [r[1] for r in rows] == [CFG18.num_classes, CFG18.num_classes, 0] and [r[2] for r in rows] == [0, 0, 0]
record(
    "NaN input",
    "NaN logits of the sample with one NaN pixel, torch / keras / paddle",
    " / ".join(str(r[1]) for r in rows),
)

# %% [markdown]
# ## Empty batch in training mode
#
# A lone Keras `BatchNormalization` given an empty batch in training mode averages over zero samples and its
# moving statistics become NaN for good, without a word; PyTorch's and Paddle's BN leave theirs as they were.
# The project's models refuse an empty training batch before it reaches BN, in all three frameworks.

# %%
kbn = keras.layers.BatchNormalization()
kbn(np.ones((2, 4, 4, 3), np.float32), training=False)  # built, moving statistics 0 and 1
kbn(np.zeros((0, 4, 4, 3), np.float32), training=True)
tbn = torch.nn.BatchNorm2d(3).train()
tbn(torch.zeros(0, 3, 4, 4))
pbn = paddle.nn.BatchNorm2D(3)
pbn.train()
pbn(paddle.zeros([0, 3, 4, 4]))
stats = {
    "torch": tbn.running_mean.numpy(),
    "keras": keras.ops.convert_to_numpy(kbn.moving_mean),
    "paddle": pbn._mean.numpy(),
}
refusal = fed(lambda: nets["keras"](np.zeros((0, 32, 32, 3), np.float32), training=True))
table(["framework", "moving mean after an empty training batch"], [(f, str(v)) for f, v in stats.items()])
assert np.isnan(stats["keras"]).all() and not np.isnan(stats["torch"]).any() and not np.isnan(stats["paddle"]).any()
assert refusal[0] == "refused" and "empty batch in training mode" in refusal[1]
record(
    "Empty batch in training mode",
    "NaN moving means after one empty batch, torch / keras / paddle",
    " / ".join(str(int(np.isnan(v).sum())) for v in stats.values()),
)

# %% [markdown]
# ## Optimizer epsilon (Adam)
#
# PyTorch and Paddle divide by `sqrt(v̂) + ε` with the **bias-corrected** `v̂ = v / (1 - β₂ᵗ)`. Keras folds the
# bias correction into the learning rate and divides by `sqrt(v) + ε`, the **uncorrected** one, so its ε acts
# like a PyTorch ε of `ε / sqrt(1 - β₂ᵗ)`: about 32 times larger at step 1, and its default is 1e-7, not
# 1e-8. For gradients near ε the first steps differ a lot; `ε·sqrt(1 - β₂ᵗ)` matches one given step, and only
# ε = 0 matches every step.

# %%
grads = np.logspace(-10, -2, 33).astype(np.float32)
lr = 1e-3


def first_adam_update(framework, eps):
    """-Δw / lr after one Adam step from w = 0 with gradient ``grads``."""
    if framework == "torch":
        p = torch.nn.Parameter(torch.zeros(grads.size))
        opt = torch.optim.Adam([p], lr=lr, eps=eps)
        (p * torch.from_numpy(grads)).sum().backward()
        opt.step()
        return -p.detach().numpy() / lr
    if framework == "paddle":
        p = paddle.create_parameter([grads.size], "float32", default_initializer=paddle.nn.initializer.Constant(0.0))
        opt = paddle.optimizer.Adam(learning_rate=lr, parameters=[p], epsilon=eps)
        (p * paddle.to_tensor(grads)).sum().backward()
        opt.step()
        return -p.numpy() / lr
    v = keras.Variable(np.zeros_like(grads))
    keras.optimizers.Adam(learning_rate=lr, epsilon=eps).apply_gradients([(keras.ops.convert_to_tensor(grads), v)])
    return -keras.ops.convert_to_numpy(v) / lr


defaults = {"torch": 1e-8, "paddle": 1e-8, "keras": keras.optimizers.Adam().epsilon}
updates = {f"{f} (ε={e:g})": first_adam_update(f, e) for f, e in defaults.items()}
updates["keras (ε=1e-8)"] = first_adam_update("keras", 1e-8)
updates["keras (ε=1e-8·sqrt(1-β₂))"] = first_adam_update("keras", 1e-8 * math.sqrt(1 - 0.999))

fig, ax = plt.subplots(figsize=(7, 3.2))
for (label, u), style in zip(updates.items(), ["-", ":", "--", "-.", (0, (1, 3))]):
    ax.semilogx(grads, u, linestyle=style, lw=2, label=label)
ax.set_xlabel("gradient")
ax.set_ylabel("first step / learning rate")
ax.set_title("Adam's first step against the gradient: where ε sits decides when updates fade")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

at = lambda g: int(np.argmin(np.abs(grads - g)))
t = updates["torch (ε=1e-08)"]
k_default = updates[f"keras (ε={defaults['keras']:g})"]
assert np.allclose(updates["paddle (ε=1e-08)"], t, rtol=1e-4)
assert np.allclose(updates["keras (ε=1e-8·sqrt(1-β₂))"], t, rtol=1e-3)  # matches at step 1 only
record(
    "Optimizer epsilon (Adam)",
    "first Adam step at gradient 1e-6, Keras defaults vs PyTorch's (step / lr)",
    f"{k_default[at(1e-6)]:.3f} vs {t[at(1e-6)]:.3f}",
)
record(
    "Optimizer epsilon (Adam)",
    "same ε=1e-8 in both, gradient 1e-8: Keras vs PyTorch (step / lr)",
    f"{updates['keras (ε=1e-8)'][at(1e-8)]:.3f} vs {t[at(1e-8)]:.3f}",
)

# %% [markdown]
# ## Optimizer hyper-parameter precision (Keras)
#
# Keras keeps the learning rate in a float32 variable and casts β through float32, even for float64 weights. A
# float64 Adam step (ε = 0, so the formulas above agree exactly) then differs from PyTorch's by the rounding of
# β₂ = 0.999 to float32; with hyper-parameters that float32 represents exactly (`2⁻¹⁰`, `0.875`,
# `1 - 2⁻¹⁰`), the difference falls to float64 rounding. That is why the parity suite uses such values.

# %%
w64 = rng.standard_normal(256)
g64 = rng.standard_normal(256)


def float64_adam_step(framework, lr, betas):
    if framework == "torch":
        p = torch.nn.Parameter(torch.from_numpy(w64.copy()))
        opt = torch.optim.Adam([p], lr=lr, betas=betas, eps=0.0)
        (p * torch.from_numpy(g64)).sum().backward()
        opt.step()
        return p.detach().numpy() - w64
    v = keras.Variable(w64.copy(), dtype="float64")
    keras.optimizers.Adam(learning_rate=lr, beta_1=betas[0], beta_2=betas[1], epsilon=0.0).apply_gradients(
        [(keras.ops.convert_to_tensor(g64), v)]
    )
    return keras.ops.convert_to_numpy(v) - w64


rows = []
for lr, betas in [(1e-3, (0.875, 0.999)), (2**-10, (0.875, 1 - 2**-10))]:
    t, k = float64_adam_step("torch", lr, betas), float64_adam_step("keras", lr, betas)
    rows.append((lr, betas, f"{np.linalg.norm(k - t) / np.linalg.norm(t):.1e}"))
table(["learning rate", "betas", "float64 Adam step, Keras vs PyTorch (relative)"], rows)
assert float(rows[0][2]) > 1e-6 and float(rows[1][2]) < 1e-12
record(
    "Optimizer hyper-parameter precision (Keras)",
    "float64 Adam step, beta2 = 0.999 / 1 - 2^-10 (relative)",
    f"{rows[0][2]} / {rows[1][2]}",
)

# %% [markdown]
# ## Weight decay
#
# PyTorch's and Paddle's `weight_decay` is L2: `g + wd·w` enters the momentum (or Adam) update. Keras'
# `weight_decay` is **decoupled**: `w -= lr·wd·w` outside it. With momentum the two part after the first step;
# after two SGD steps the difference is exactly `lr · momentum · wd · w₀`. The project's `optimizer_step(...,
# weight_decay=)` means L2 in all three, added to Keras' gradients.

# %%
w0 = rng.standard_normal(1000).astype(np.float32)
g = rng.standard_normal(1000).astype(np.float32)
lr, mom, wd = 0.1, 0.9, 0.01


def sgd_two_steps(framework, decoupled=False, lrs=(lr, lr)):
    if framework == "torch":
        p = torch.nn.Parameter(torch.from_numpy(w0.copy()))
        opt = torch.optim.SGD([p], lr=lrs[0], momentum=mom, weight_decay=wd)
        for step_lr in lrs:
            opt.param_groups[0]["lr"] = step_lr
            opt.zero_grad()
            (p * torch.from_numpy(g)).sum().backward()
            opt.step()
        return p.detach().numpy()
    if framework == "paddle":
        p = paddle.create_parameter([1000], "float32", default_initializer=paddle.nn.initializer.Assign(w0))
        opt = paddle.optimizer.Momentum(learning_rate=lrs[0], momentum=mom, parameters=[p], weight_decay=wd)
        for step_lr in lrs:
            opt.set_lr(step_lr)
            opt.clear_grad()
            (p * paddle.to_tensor(g)).sum().backward()
            opt.step()
        return p.numpy()
    v = keras.Variable(w0.copy())
    opt = keras.optimizers.SGD(learning_rate=lrs[0], momentum=mom, weight_decay=wd if decoupled else None)
    for step_lr in lrs:
        opt.learning_rate.assign(step_lr)
        grad = keras.ops.convert_to_tensor(g) + (0.0 if decoupled else wd * v.value)  # L2, as the project adds it
        opt.apply_gradients([(grad, v)])
    return keras.ops.convert_to_numpy(v)


t = sgd_two_steps("torch")
step = np.linalg.norm(t - w0)
k_dec, k_l2, p_l2 = sgd_two_steps("keras", decoupled=True), sgd_two_steps("keras"), sgd_two_steps("paddle")
formula = np.abs((t - k_dec) - (-lr * mom * wd * w0)).max()
table(
    ["two SGD steps with weight decay, against PyTorch", "relative to the update"],
    [
        ("Keras weight_decay= (decoupled)", f"{np.linalg.norm(k_dec - t) / step:.1e}"),
        ("Keras, L2 added to the gradient", f"{np.linalg.norm(k_l2 - t) / step:.1e}"),
        ("Paddle weight_decay= (L2Decay)", f"{np.linalg.norm(p_l2 - t) / step:.1e}"),
    ],
)
assert formula < 1e-6 and np.linalg.norm(k_l2 - t) / step < 1e-5 and np.linalg.norm(p_l2 - t) / step < 1e-5
record(
    "Weight decay",
    "two SGD steps, Keras decoupled vs PyTorch L2 (relative to the update); deviation from lr·momentum·wd·w0",
    f"{np.linalg.norm(k_dec - t) / step:.1e}; {formula:.0e}",
)

# %% [markdown]
# ## SGD momentum formula
#
# PyTorch and Paddle keep `v = μ·v + g` and step `w -= lr·v`; Keras keeps `v = μ·v - lr·g` and steps `w += v`.
# The learning rate sits inside Keras' buffer, so the two agree exactly while the rate is constant and part as
# soon as it changes (a schedule): after two steps by `μ·g₁·(lr₁ - lr₂)`. (No weight decay in Keras here, L2
# is added to its gradient as above.)

# %%
rows = []
for lrs in [(0.1, 0.1), (0.1, 0.05)]:
    t, k, p = sgd_two_steps("torch", lrs=lrs), sgd_two_steps("keras", lrs=lrs), sgd_two_steps("paddle", lrs=lrs)
    step = np.linalg.norm(t - w0)
    rows.append(
        (f"{lrs[0]} then {lrs[1]}", f"{np.linalg.norm(k - t) / step:.1e}", f"{np.linalg.norm(p - t) / step:.1e}")
    )
table(["learning rates", "Keras vs PyTorch (relative to the update)", "Paddle vs PyTorch"], rows)
assert float(rows[0][1]) < 1e-5 and float(rows[1][1]) > 1e-2 and max(float(r[2]) for r in rows) < 1e-5
record(
    "SGD momentum formula",
    "two momentum steps, Keras vs PyTorch: constant lr / lr halved at step 2 (relative)",
    f"{rows[0][1]} / {rows[1][1]}",
)

# %% [markdown]
# ## Cross-entropy input
#
# `torch.nn.functional.cross_entropy` and `paddle.nn.functional.cross_entropy` take **logits**; Keras' losses
# take **probabilities** unless told `from_logits=True`. Keras does not refuse logits: it rescales them to sum to
# one and clips, and returns a plausible-looking wrong number. The project's training helpers take the logits
# probe (bypassing MiniModel's optional softmax) and call Keras with `from_logits=True`.

# %%
logits = probes18["torch"]["output"]
y = LABELS18
losses = {
    "torch cross_entropy(logits)": float(
        torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y))
    ),
    "paddle cross_entropy(logits)": float(
        paddle.nn.functional.cross_entropy(paddle.to_tensor(logits), paddle.to_tensor(y))
    ),
    "keras, from_logits=True": float(
        keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
    ),
    "keras, default (from_logits=False)": float(
        keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits))
    ),
}
table(["loss on the same ResNet-18 logits", "value"], [(k_, f"{v:.4f}") for k_, v in losses.items()])
ref = losses["torch cross_entropy(logits)"]
assert abs(losses["paddle cross_entropy(logits)"] - ref) < 1e-5 and abs(losses["keras, from_logits=True"] - ref) < 1e-5
assert abs(losses["keras, default (from_logits=False)"] - ref) > 0.1
record(
    "Cross-entropy input",
    "Keras loss on logits without from_logits=True vs PyTorch's",
    f"{losses['keras, default (from_logits=False)']:.3f} vs {ref:.3f}",
)

# %% [markdown]
# ## Dropout RNG
#
# Each framework draws dropout masks from its own generator, so the same seed gives three different masks (all
# three scale the kept units by `1/(1-p)`). MiniModel's dropout is therefore switched off in every comparison
# (`probe_outputs` and the training helpers do it).

# %%
ones = np.ones(100_000, np.float32)
torch.manual_seed(0)
masks = {"torch": torch.nn.functional.dropout(torch.from_numpy(ones), 0.25, training=True).numpy()}
paddle.seed(0)
masks["paddle"] = paddle.nn.functional.dropout(paddle.to_tensor(ones), 0.25, training=True).numpy()
masks["keras"] = keras.ops.convert_to_numpy(keras.layers.Dropout(0.25, seed=0)(ones, training=True))
rows = []
for a, b in (("torch", "keras"), ("torch", "paddle"), ("keras", "paddle")):
    rows.append((f"{a} vs {b}", f"{np.mean(masks[a] != masks[b]):.3f}"))
table(["seed 0, p = 0.25", "fraction of units masked differently (independent masks: 2p(1-p) = 0.375)"], rows)
assert all(set(np.unique(m)) == {0.0, np.float32(1 / 0.75)} for m in masks.values())
assert all(0.35 < float(r[1]) < 0.40 for r in rows)
record("Dropout RNG", "same seed, p = 0.25: fraction of units masked differently, torch vs keras", rows[0][1])

# %% [markdown]
# ## Default initializers
#
# Fresh models never agree: PyTorch initialises a conv kernel from U(±1/sqrt(fan_in)) (kaiming-uniform with
# a = √5) and its bias uniformly, Keras uses Glorot-uniform and zero biases, Paddle N(0, 2/fan_in) for these
# layers and zero biases. Every comparison in the project therefore transfers weights first, BN statistics
# included. The standard deviation of `layer1.0.conv1.weight` (fan_in = fan_out = 64·3·3) in fresh models:

# %%
fan = 64 * 3 * 3
formula = {"torch": 1 / math.sqrt(3 * fan), "keras": math.sqrt(2 / (fan + fan)), "paddle": math.sqrt(2 / fan)}
fresh = {f: fw[f].build("resnet18") for f in ("torch", "keras", "paddle")}
fresh_w = {f: fw[f].export_weights(net) for f, net in fresh.items()}
rows = [
    (
        f,
        f"{fresh_w[f]['layer1.0.conv1.weight'].std():.4f}",
        f"{formula[f]:.4f}",
        f"{np.abs(fresh_w[f]['fc.bias']).max():.3f}",
    )
    for f in fresh
]
table(["framework", "std of layer1.0.conv1.weight", "std of the documented initializer", "max |fc.bias|"], rows)
assert all(abs(float(r[1]) / float(r[2]) - 1) < 0.02 for r in rows)
fresh_out = {f: fw[f].probe_outputs(net, X18)["output"] for f, net in fresh.items()}
fresh_gap = compare.probe_error("logits", fresh_out["torch"], fresh_out["keras"]).rel
assert fresh_gap > 0.1
record("Default initializers", "fresh ResNet-18 models, torch vs keras logits (relative)", f"{fresh_gap:.2f}")

# %% [markdown]
# ## TF32 on GPUs
#
# On Ampere and newer GPUs, TensorFloat-32 runs float32 matmuls and convolutions with a 10-bit mantissa
# (float32 has 23). Whether it is on by default differs per framework and per operation; the switches as this
# installation reports them are printed below. There is no GPU here, so we **emulate** TF32: round a
# convolution's input and kernel to a 10-bit mantissa, as the tensor cores do, and compare with plain float32.
# The parity suite switches TF32 off in all three frameworks (`resnet_<framework>.tf32(False)`)
# whenever it runs on a GPU.

# %%
from paddle.base import core as paddle_core

table(
    ["switch", "value here"],
    [
        ("PyTorch `torch.backends.cudnn.allow_tf32` (convolutions)", torch.backends.cudnn.allow_tf32),
        ("PyTorch `torch.backends.cuda.matmul.allow_tf32` (matmuls)", torch.backends.cuda.matmul.allow_tf32),
        (
            "TensorFlow `tf.config.experimental.tensor_float_32_execution_enabled()`",
            tf.config.experimental.tensor_float_32_execution_enabled(),
        ),
        ("Paddle `core.get_cudnn_switch()` (cuDNN TF32)", paddle_core.get_cudnn_switch()),
        ("Paddle `core.get_cublas_switch()` (cuBLAS TF32)", paddle_core.get_cublas_switch()),
    ],
)


def round_to_tf32(a):
    """Round float32 values to TF32's 10-bit mantissa (round half up on the dropped 13 bits)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


conv_w = W18["layer4.1.conv2.weight"]
x = rng.standard_normal((2, 512, 4, 4)).astype(np.float32)
exact = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(conv_w).double(), padding=1).numpy()
fp32 = torch_conv(conv_w, 1, 1, x)
tf32_like = torch_conv(round_to_tf32(conv_w), 1, 1, round_to_tf32(x))
e32, etf = (np.abs(o - exact).max() / np.abs(exact).max() for o in (fp32, tf32_like))
assert etf > 100 * e32 and etf > settings.FORWARD_TOL
record("TF32 on GPUs", "layer4 3×3 conv, relative error vs float64: float32 / emulated TF32", f"{e32:.1e} / {etf:.1e}")

# %% [markdown]
# ## Import order (TF before Paddle)
#
# In one process, `import tensorflow` followed by `import paddle` kills Python with a segmentation fault while
# libpaddle loads: TensorFlow puts its protobuf runtime in the process' global symbol scope and libpaddle's
# own, incompatible protobuf calls get bound to it (`resnet_core/runtime.py` has the full diagnosis). The
# other order works. The project avoids it twice: `resnet_core.frameworks.load_all` (used above) imports Paddle
# first, and `resnet_keras`/`resnet_paddle` load libpaddle with `RTLD_DEEPBIND` when TensorFlow came first, or
# refuse with a clear `ImportError` where that is impossible. Each experiment runs in its own subprocess, so
# the crash cannot take this notebook down.


# %%
def in_subprocess(code, **env):
    start = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", code + "; print('both loaded')"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    error = [line for line in r.stderr.splitlines() if "Error" in line][-1:]
    return r.returncode, time.perf_counter() - start, r.stdout.strip() or (error[0][:150] + " ..." if error else "")


cases = [
    ("import tensorflow; import paddle", {}),
    ("import paddle; import tensorflow", {}),
    ("import tensorflow; import resnet_paddle", {}),
    ("import tensorflow; import resnet_paddle", {"RESNET_PARITY_NO_DEEPBIND": "1"}),
]
rows, codes = [], []
for code, env in cases:
    rc, seconds, said = in_subprocess(code, **env)
    codes.append(rc)
    what = "SIGSEGV" if rc == -11 else f"exit {rc}"
    rows.append(
        (
            f"`{code}`" + (" with " + ", ".join(f"`{k_}={v}`" for k_, v in env.items()) if env else ""),
            what,
            f"{seconds:.1f} s",
            said.replace("|", "/"),
        )
    )
table(["in a fresh process", "result", "time", "what it printed"], rows)
assert codes == [-11, 0, 0, 1], codes
record(
    "Import order (TF before Paddle)",
    "`import tensorflow; import paddle` in a fresh process: exit status",
    f"{codes[0]} (SIGSEGV)",
)

# %% [markdown]
# ## numpy conversion
#
# `tensor.numpy()` in PyTorch returns a **view** of the tensor's memory: change the tensor (an optimizer step
# does, in place) and the array changes too. Keras' `convert_to_numpy` and Paddle's `.numpy()` return copies.
# The parity matrix copies every result it keeps, and `export_weights` copies where it transposes.


# %%
def after_in_place_add(framework):
    if framework == "torch":
        t = torch.zeros(3)
        a = t.numpy()
        t += 1
    elif framework == "paddle":
        t = paddle.zeros([3])
        a = t.numpy()
        t += 1
    else:
        t = keras.Variable(np.zeros(3, np.float32))
        a = keras.ops.convert_to_numpy(t)
        t.assign_add(np.ones(3, np.float32))
    return float(a[0])


seen = {f: after_in_place_add(f) for f in ("torch", "keras", "paddle")}
table(["framework", "array taken before `tensor += 1` now holds"], [(f, v) for f, v in seen.items()])
assert seen == {"torch": 1.0, "keras": 0.0, "paddle": 0.0}
record(
    "numpy conversion",
    "array taken before an in-place +1, torch / keras / paddle",
    " / ".join(f"{v:g}" for v in seen.values()),
)

# %% [markdown]
# ## Float32 accuracy with batch statistics
#
# How close can float32 get at all? Against a float64 evaluation of the same network (the Keras model cast to
# float64, the input rounded to float32 first), every framework's float32 probes are off by rounding. In eval
# mode BN is a fixed affine map; in training mode every BN renormalises with statistics computed from rounded
# activations, and the error grows with depth. This is why the parity suite's train-mode tolerance (3e-5) is
# wider than the eval one (1e-5).

# %%
k64 = fw["keras"].cast_model(nets["keras"], "float64")
ref_eval = fw["keras"].probe_outputs(k64, X18)
ref_train = fw["keras"].probe_outputs(fw["keras"].cast_model(nets["keras"], "float64"), X18, training=True)
rows, accuracy = [], {}
for f, net in nets.items():
    ev = compare.compare_probes(CFG18, ref_eval, probes18[f], label=f"{f} eval")
    # a float32 copy: training mode updates the running statistics of the model it runs
    tr = compare.compare_probes(
        CFG18, ref_train, fw[f].probe_outputs(fw[f].cast_model(net, "float32"), X18, training=True)
    )
    worst = max(tr.errors, key=lambda e: e.error)
    accuracy[f] = (ev.max_error, tr.max_error)
    rows.append((f, f"{ev.max_error:.1e}", f"{tr.max_error:.1e}", worst.name))
table(["framework (float32)", "eval: worst probe vs float64", "train: worst probe vs float64", "train: worst at"], rows)
assert all(e < settings.FORWARD_TOL and t < 3e-5 for e, t in accuracy.values())
assert sum(t for _, t in accuracy.values()) > sum(e for e, _ in accuracy.values())
record(
    "Float32 accuracy with batch statistics",
    "ResNet-18 cifar, batch 2: worst probe vs float64, eval / train (keras)",
    f"{accuracy['keras'][0]:.1e} / {accuracy['keras'][1]:.1e}",
)

# %% [markdown]
# ## ReLU kinks in float32 gradients
#
# A ReLU's derivative jumps from 0 to 1 at zero. A pre-activation that lies within rounding distance of zero can
# be positive in one framework and negative in another, and then the gradient flows through it in one and not
# in the other: a difference far above rounding, in whichever tensors that unit feeds. Count the sign flips
# between the frameworks' float32 pre-activations (the `bn1` outputs, each followed by a ReLU), then compare the
# gradients in float32 and in float64, where a flip needs a much closer call. How many flips a run meets depends
# on the data and the CPU's kernels; the catalog's run found gradients 7e-3 apart.

# %%
bn1 = [p.name for p in spec.probes(CFG18) if p.name == "bn1" or p.name.endswith(".bn1")]
total = sum(probes18["torch"][n].size for n in bn1)
flips = {
    f"{a} vs {b}": sum(int((np.sign(probes18[a][n]) != np.sign(probes18[b][n])).sum()) for n in bn1)
    for a, b in (("torch", "keras"), ("torch", "paddle"), ("keras", "paddle"))
}
print(f"ReLU inputs that change sign between frameworks, of {total:,} (eval mode):", flips)

grads = {}
for dtype in ("float32", "float64"):
    for f, net in nets.items():
        grads[f, dtype] = fw[f].gradients(fw[f].cast_model(net, dtype), X18.astype(dtype), LABELS18)
rows, worst_by = [], {}
for f in ("keras", "paddle"):
    for dtype in ("float32", "float64"):
        c = compare.compare_tensors(grads["torch", dtype], grads[f, dtype], tol=1.0)
        worst = max(c.errors, key=lambda e: e.error)
        worst_by[f, dtype] = worst.error
        rows.append(
            (f"torch vs {f}", dtype, f"{worst.error:.1e}", worst.name, f"{np.median([e.error for e in c.errors]):.1e}")
        )
table(["gradients (ResNet-18, batch 2)", "dtype", "worst tensor (L2, relative)", "which", "median tensor"], rows)
assert all(
    worst_by[f, "float64"] < 1e-7 and worst_by[f, "float32"] > 100 * worst_by[f, "float64"] for f in ("keras", "paddle")
)
record(
    "ReLU kinks in float32 gradients",
    "worst gradient tensor, torch vs keras: float32 / float64 (relative L2)",
    f"{worst_by['keras', 'float32']:.1e} / {worst_by['keras', 'float64']:.1e}",
)

# %% [markdown]
# ## Exactly-zero gradients
#
# A conv bias followed, on every path, by a BatchNorm that uses batch statistics has **zero** gradient: the BN
# subtracts the batch mean, and a per-channel constant cancels. All of MiniModel's conv biases are such (every
# path reaches a BN through additions and max-pools, which pass a constant through). What the frameworks return
# for them is rounding noise, which differs between frameworks and which Adam, dividing by its own scale, would
# blow up to a full-size step. The parity suite measures them against a floor, not against their own norm.

# %%
cfg = spec.make_config("minimodel")
mini = fw["torch"].build("minimodel")
fw["torch"].import_weights(mini, random_weights(cfg, seed=3))
xm = random_input(cfg, 2, 32, 32, seed=3)
biases = [p.name for p in spec.param_specs(cfg) if p.role == "conv.bias"]
rows, share = [], {}
for dtype in ("float32", "float64"):
    g = fw["torch"].gradients(fw["torch"].cast_model(mini, dtype), xm.astype(dtype), np.array([0, 1]))
    norm = math.sqrt(sum(float(np.sum(np.square(v, dtype=np.float64))) for v in g.values()))
    share[dtype] = max(float(np.linalg.norm(g[b])) for b in biases) / norm
    rows.append((dtype, len(biases), f"{share[dtype]:.1e}"))
table(["dtype", "conv biases", "largest bias gradient / norm of the whole gradient"], rows)
assert share["float64"] < 1e-12 and share["float32"] < 1e-5
record(
    "Exactly-zero gradients",
    "MiniModel conv-bias gradients / whole gradient norm, float32 / float64",
    f"{share['float32']:.0e} / {share['float64']:.0e}",
)

# %% [markdown]
# ## Summary: every row, its number
#
# The numbers measured above, by row of `docs/framework-differences.md` (in its order). The catalog itself adds
# what the project does about each difference and the test that proves it; `resnet-parity report` measures the
# full matrix of models, directions and levels.

# %%
order = {row: i for i, row in enumerate(CATALOG)}
table(["catalog row", "measured", "number"], sorted(measured, key=lambda m: order[m[0]]))
missing = [row for row in CATALOG if row not in {m[0] for m in measured}]
assert not missing, f"catalog rows without a measured number in this notebook: {missing}"
print(f"all {len(CATALOG)} catalog rows demonstrated, {len(measured)} measured numbers")
