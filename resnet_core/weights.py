"""Canonical weight dictionaries: strict validation and seeded random weights."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import spec


class WeightsError(ValueError):
    """A set of weights does not match the specification; the message names the tensors."""


def _short(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _as_array(value: object) -> np.ndarray | str:
    """``value`` as a numpy array, or what is wrong with it (a message).

    Framework tensors are accepted as they come: a PyTorch tensor that requires grad (or lives on a
    GPU) is detached and moved to the CPU first, the way ``export_weights`` does, instead of failing
    with torch's "Can't call numpy() on Tensor that requires grad".
    """
    for method in ("detach", "cpu"):
        if callable(getattr(value, method, None)) and not isinstance(value, np.ndarray):
            value = getattr(value, method)()
    try:
        return np.asarray(value)
    except Exception as e:
        return f"expected an array, received {type(value).__name__} that numpy cannot read ({' '.join(str(e).split())})"


def check_weights(
    cfg: spec.Config, weights: Mapping[str, np.ndarray], *, allow_nonfinite: bool = False
) -> dict[str, np.ndarray]:
    """Validate ``weights`` against ``cfg`` and return them as float32 arrays in canonical order.

    Every canonical tensor must be present exactly once with its canonical shape.
    Missing, unexpected, mis-shaped, non-numeric and (unless allowed) NaN/Inf
    tensors are reported together, by name, before anything is loaded anywhere.
    """
    specs = spec.param_specs(cfg)
    expected = {p.name: p for p in specs}
    model = spec.model_name(cfg)
    if not isinstance(weights, Mapping):
        raise TypeError(
            f"expected the weights as a mapping of canonical name -> array ({len(specs)} tensors for {model}); "
            f"received {type(weights).__name__}"
        )
    problems = []
    missing = [n for n in expected if n not in weights]
    unexpected = [n for n in weights if n not in expected]
    if missing:
        problems.append(f"missing {len(missing)}: {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)}: {_short(unexpected)}")
    out: dict[str, np.ndarray] = {}
    bad_shape, bad_dtype, nonfinite, negative = [], [], [], []
    for p in specs:
        if p.name not in weights:
            continue
        a = _as_array(weights[p.name])
        if isinstance(a, str):
            bad_dtype.append(f"{p.name}: {a}")
            continue
        if not (np.issubdtype(a.dtype, np.floating)):
            bad_dtype.append(f"{p.name} has dtype {a.dtype}, expected a float dtype")
            continue
        if tuple(a.shape) != p.shape:
            bad_shape.append(f"{p.name} expected {p.shape}, received {tuple(a.shape)}")
            continue
        a = a.astype(np.float32, copy=False)
        if not allow_nonfinite and not np.isfinite(a).all():
            nonfinite.append(p.name)
        if p.role == "bn.running_var" and (a < 0).any():  # a variance is >= 0; BN would take sqrt(var + eps) of it
            negative.append(f"{p.name} (min {float(np.nanmin(a)):.3g})")
        out[p.name] = a
    if bad_shape:
        problems.append(
            f"mis-shaped {len(bad_shape)}: " + "; ".join(bad_shape[:4]) + (" ..." if len(bad_shape) > 4 else "")
        )
    if bad_dtype:
        problems.append("; ".join(bad_dtype[:4]))
    if nonfinite:
        problems.append(f"NaN/Inf values in {len(nonfinite)}: {_short(nonfinite)}")
    if negative:
        problems.append(f"negative running variance (expected >= 0) in {len(negative)}: {_short(negative, 4)}")
    if problems:
        raise WeightsError(f"weights do not match {model} {cfg.to_dict()}: " + " | ".join(problems))
    return out


def random_weights(cfg: spec.Config, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random canonical weights, including random BN statistics.

    Conv and linear weights are He-scaled so activations stay O(1) through the
    depth; BN gamma/beta/mean are far from 1/0 and running_var is in [0.5, 2],
    so a swapped, transposed or ignored statistic changes the output visibly.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for p in spec.param_specs(cfg):
        if p.role in ("conv.weight", "linear.weight"):
            fan_in = int(np.prod(p.shape[1:]))
            a = rng.standard_normal(p.shape) * np.sqrt(2.0 / fan_in)
        elif p.role == "bn.weight":
            a = rng.uniform(0.5, 1.5, p.shape)
        elif p.role == "bn.running_var":
            a = rng.uniform(0.5, 2.0, p.shape)
        elif p.role == "bn.running_mean":
            a = rng.uniform(-0.5, 0.5, p.shape)
        else:  # biases, bn.bias
            a = rng.uniform(-0.2, 0.2, p.shape)
        out[p.name] = a.astype(np.float32)
    return out


def random_input(cfg: spec.Config, batch: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A seeded NCHW float32 input batch."""
    shape = (batch, cfg.in_channels, height, width)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
