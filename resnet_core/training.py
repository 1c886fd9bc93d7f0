"""What the three ``resnet_<fw>.training`` modules share: the optimizer and dtype names and the batch check."""

from __future__ import annotations

import numpy as np

from . import spec

OPTIMIZERS = ("sgd", "adam")
DTYPES = ("float32", "float64")


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: expected one of {list(DTYPES)}")


def check_batch(cfg: spec.Config, x: np.ndarray, labels: np.ndarray, steps: int = 1) -> np.ndarray:
    """Validate a training batch (NCHW input, integer class labels) and return the labels as int64."""
    spec.check_input_shape(cfg, tuple(np.shape(x)), "NCHW")
    y = np.asarray(labels)
    if (
        y.shape != (np.shape(x)[0],)
        or not np.issubdtype(y.dtype, np.integer)
        or y.min() < 0
        or y.max() >= cfg.num_classes
    ):
        raise ValueError(
            f"labels must be {np.shape(x)[0]} integer classes in [0, {cfg.num_classes}) for a batch of "
            f"{np.shape(x)[0]}; received a {y.dtype} array of shape {y.shape}"
            + (f" with values {y.min()}..{y.max()}" if y.size and np.issubdtype(y.dtype, np.number) else "")
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, received {steps!r}")
    return y.astype(np.int64)
