"""Every setting of the parity matrix, in one place: tolerances, seeds, batch, optimizers, levels.

Each figure states why it is what it is. Sizes are not here: each variant's eval and training
sizes live in the variant table (:mod:`resnet_core.spec.variants`).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from ..frameworks import WORKERS
from ..names import FRAMEWORKS

# ----------------------------------------------------------------------------- tolerances
# Float32 CPU eval-forward agreement is 1.4e-6..4e-6 (random weights and BN statistics, the
# frameworks sum in different orders); 1e-5 is the criterion and leaves >2x margin.
FORWARD_TOL = 1e-5
# Train mode (batch statistics) in float32: every BN renormalises by the batch std, so rounding
# accumulates with depth instead of shrinking. Measured against a float64 evaluation of the same
# network (resnet18-imagenet 224x224): torch 5.9e-6, Paddle 5.5e-6, Keras/oneDNN 1.0e-5 (every BN
# itself is accurate to <1e-6 on its own input; more samples per channel do not help: batch 8
# gives 1.3e-5). Two correct float32 ports can so differ by the sum, ~1.6e-5; 3e-5 leaves ~2x.
TRAIN_FORWARD_TOL = 3e-5
# Gradients and optimizer steps are compared in float64 (see docs/framework-differences.md: in
# float32 a pre-activation within rounding distance of 0 flips a ReLU's derivative between
# frameworks and moves a whole gradient by up to 7e-3 of its norm). In float64 the frameworks'
# gradients agree to 1e-14..3e-8 of their norms (measured), so 1e-5 is the criterion
# with orders of magnitude of margin and catches any real difference.
GRAD_TOL = 1e-5
# Optimizer steps (float64): weight updates agree to ~1e-11 of their norms; BN running statistics
# to ~3e-6 of their increments, because Paddle's BN momentum is a float32 attribute (catalog).
STEP_TOL = 1e-5
# A gradient that is zero in exact arithmetic (a bias followed, on every path, by a
# batch-statistics BN) holds float64 noise of ~1e-18 of the total gradient norm, while the
# smallest genuine per-tensor gradient is ~2e-3 of it (measured): such tensors are measured
# against 1e-9 of the total norm instead of their own.
GRAD_FLOOR_REL = 1e-9

# ----------------------------------------------------------------------------- the matrix, as data
BATCH = 2
WEIGHT_SEED, DECOY_SEED = 1, 2  # the weights every direction carries; what a destination holds before
INPUT_SEED, LABEL_SEED = 7, 11

# Optimizer settings. Two SGD steps, so that the momentum buffer carries over; one Adam step.
# Learning rates and betas are exactly representable in float32: Keras keeps the learning rate
# in a float32 variable and casts beta through float32 even for float64 weights, which on its
# own would move a float64 Adam step by 6.4e-6 (beta_2 = 0.999) -- a storage detail, not the
# formula under test (the catalog has it).
SGD: dict[str, Any] = {"optimizer": "sgd", "steps": 2, "lr": 2**-3, "momentum": 0.875, "weight_decay": 2**-11}
ADAM: dict[str, Any] = {
    "optimizer": "adam",
    "steps": 1,
    "lr": 2**-10,
    "betas": (0.875, 1 - 2**-10),
    "weight_decay": 2**-11,
}
ADAM_EPSILON = 1e-8
OPTIMIZERS = {"sgd": SGD, "adam": ADAM}
# How each framework's BN updates running_var: with the unbiased batch variance (sum/(n-1)) or
# the biased one (sum/n). Increments are brought to the unbiased convention before comparing.
BN_RUNNING_VAR = {"torch": "unbiased", "keras": "biased", "paddle": "biased"}

LEVELS = ("structure", "eval", "train", "gradients", "sgd", "adam")
TOLERANCES = {"eval": FORWARD_TOL, "train": TRAIN_FORWARD_TOL, "gradients": GRAD_TOL, "sgd": STEP_TOL, "adam": STEP_TOL}
# Directions: the six between the frameworks in one process, and each worker implementation (Keras on
# JAX, Keras on PyTorch) to and from PyTorch and Paddle -- the references that are not Keras.
PAIRS = (
    *itertools.permutations(FRAMEWORKS, 2),
    *((a, b) for w in WORKERS for ref in ("torch", "paddle") for a, b in ((ref, w), (w, ref))),
)


def optimizer_settings(framework: str, optimizer: str) -> dict[str, Any]:
    """Hyper-parameters under which ``framework``'s optimizer agrees with the others'.

    Adam: Keras applies epsilon to sqrt(v) *before* the bias correction, PyTorch and
    Paddle after it; after one step Keras' epsilon acts as ``eps / sqrt(1 - beta_2)``, so
    ``eps * sqrt(1 - beta_2)`` there equals ``eps`` in the other two (exact for step 1).
    """
    hp = dict(OPTIMIZERS[optimizer])
    if optimizer == "adam":
        beta2, steps = hp["betas"][1], hp["steps"]
        hp["eps"] = ADAM_EPSILON * math.sqrt(1 - beta2**steps) if framework == "keras" else ADAM_EPSILON
    return hp
