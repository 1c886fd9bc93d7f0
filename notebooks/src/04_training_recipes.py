# %% [markdown]
# # 04 · The seeds' training recipes, side by side
#
# The three seed tutorials are training recipes. Here one of them, seed 001's Keras recipe for the MiniModel
# (Adam 1e-3 with Keras' epsilon, featurewise normalisation, rotation/shift/flip augmentation), trains in
# **PyTorch**, **Keras** and **Paddle** at once:
#
# - from the same random weights (with random BN statistics), ported through each framework's `import_weights`;
# - on identical batches: the data (scikit-learn's bundled digits, resized to 32x32, 3 channels), every
#   epoch's order and every augmentation decision are drawn once in numpy;
# - each with its own optimizer and loop (`torch.optim.Adam`, `keras.optimizers.Adam`, `paddle.optimizer.Adam`).
#
# Keras adds Adam's epsilon before the bias correction, PyTorch and Paddle after it; the recipe is Keras', so
# PyTorch and Paddle use `eps / sqrt(1 - beta2^t)` at step t, which is the same update. The run trains in float32
# and, as a reference, in float64: the float32-vs-float64 distance of each framework is rounding alone, the
# distance between frameworks in float64 is what the frameworks really do differently.
#
# The same thing from the command line: `resnet-parity train --recipe keras-minimodel --steps 6 --batch 16`.
# CPU only, nothing downloaded; a couple of minutes.

# %%

# Before the first framework import: quiet logs and passive OpenMP threads (resnet_core.runtime.ENVIRONMENT).
from resnet_core import runtime

runtime.set_environment()

import warnings

warnings.filterwarnings("ignore", message="No ccache found")
warnings.filterwarnings("ignore", message="When training, we now always track")

from IPython.display import Image, Markdown, display

from resnet_core import recipes
from resnet_core.recipes import render
from resnet_core.recipes import run as recipe_run

recipe = recipes.recipe("keras-minimodel")
print(recipe)

# %% [markdown]
# ## The run
#
# Six trainers (three frameworks x two dtypes) step in lock-step; after every step the runner records each
# one's loss and batch accuracy, and for each pair the distance of the trainable weights and of that step's
# logits (scaled max-abs error, as everywhere in the suite). At the end each model predicts the 297 held-out
# digits in eval mode.

# %%
result = recipe_run.run(recipe, ["torch", "keras", "paddle"], steps=6, batch=16, dtypes=("float32", "float64"))
display(Markdown(render.table(result)))

# %% [markdown]
# ## The chart
#
# Top: loss and batch accuracy per step (a colour per framework, dashed float32). Bottom left: the frameworks
# against each other; bottom right: each framework's float32 run against its float64 run. Nothing crosses the
# separation line of 1e-3 in these few steps. In float64 PyTorch and Paddle agree to ~1e-13, and Keras sits
# 1e-7 (weights) to 4e-6 (logits) from both because it keeps the learning rate and beta_2 = 0.999 in float32
# (a storage detail, catalogued in `docs/framework-differences.md`). Float32 rounding (~1e-5) is far larger
# than any real difference here.

# %%
display(Image(data=render.plot_png(result, dpi=72, figsize=(10, 7.5))))
