"""Framework-free comparison of two runs: per-layer errors and the first diverging layer.

Two kinds of comparison are made, on plain numpy arrays:

* :func:`compare_probes` takes two ``probe_outputs`` dicts (probe name -> NCHW array)
  and walks the canonical probes of :func:`resnet_core.spec.probes` in execution order.
  A probe passes when its max-abs error, scaled by ``max(1, max|ref|)``, is within the
  tolerance; the first probe that does not is the culprit, and the failure message
  names it, with its errors and those of the layers before it, in the spirit of
  PaddlePaddle's PaDiff.
* :func:`compare_tensors` takes two canonical dicts (tensor name -> array), such as
  gradients or weights after an optimizer step, and measures each tensor's error
  relative to that tensor's L2 norm.

Tolerances live in :mod:`resnet_core.parity.settings`. Both return a result object whose
``passed``, ``max_error`` and ``message()`` the
tests and ``resnet-parity report`` use alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import spec
from .settings import FORWARD_TOL

PRECEDING = 5  # how many layers before the culprit the message shows, besides the stage outputs


@dataclass(frozen=True)
class ProbeError:
    """The error of one probe (or one canonical tensor) of ``got`` against ``ref``.

    ``max_abs`` is ``max|got - ref|``; ``scale`` is what the pass criterion divides it
    by; ``rel`` is the plain relative error ``max_abs / max|ref|``. A shape mismatch
    or a NaN makes every error infinite and is described in ``problem``.
    """

    name: str
    max_abs: float
    scale: float
    rel: float
    stage: str | None = None
    problem: str | None = None

    @property
    def error(self) -> float:
        """The figure the pass criterion compares with the tolerance."""
        return self.max_abs / self.scale

    def passes(self, tol: float) -> bool:
        return self.problem is None and self.error <= tol


def _max_abs(a: np.ndarray) -> float:
    return float(np.max(np.abs(a))) if a.size else 0.0


def _unusable(name: str, ref: np.ndarray, got: np.ndarray, stage: str | None) -> ProbeError | None:
    """An infinite error with the reason where the shapes differ; else None."""
    if ref.shape != got.shape:
        return ProbeError(name, np.inf, 1.0, np.inf, stage, f"shape {got.shape}, expected {ref.shape}")
    return None


def _nonfinite(name: str, stage: str | None) -> ProbeError:
    return ProbeError(name, np.inf, 1.0, np.inf, stage, "NaN/Inf values")


def probe_error(name: str, ref: np.ndarray, got: np.ndarray, stage: str | None = None) -> ProbeError:
    """Max-abs error of ``got`` against ``ref``, scaled by ``max(1, max|ref|)``.

    The difference is taken in float64 (float32 inputs are widened inside the subtraction, without float64
    copies). A NaN or Inf in either array leaves ``max|ref|`` or ``max|got - ref|`` non-finite, which is how
    it is found: one pass less over each array than testing them first.
    """
    ref, got = np.asarray(ref), np.asarray(got)
    if (bad := _unusable(name, ref, got, stage)) is not None:
        return bad
    with np.errstate(invalid="ignore"):  # Inf - Inf is a NaN, reported below
        diff = np.subtract(got, ref, dtype=np.float64)
    max_abs = _max_abs(diff)
    peak = _max_abs(ref)
    if not (np.isfinite(max_abs) and np.isfinite(peak)):
        return _nonfinite(name, stage)
    rel = max_abs / peak if peak > 0 else (0.0 if max_abs == 0 else np.inf)
    return ProbeError(name, max_abs, max(1.0, peak), rel, stage)


def tensor_error(name: str, ref: np.ndarray, got: np.ndarray, floor: float = 0.0) -> ProbeError:
    """L2 error of ``got`` against ``ref`` relative to ``max(||ref||, floor)``.

    ``max_abs`` holds the L2 norm of the difference here; ``rel`` the plain ratio to
    ``||ref||``. ``floor`` stands for tensors that are zero in exact arithmetic (see
    :func:`compare_tensors`). Computed in float64; a NaN or Inf is found as in :func:`probe_error`.
    """
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got)
    if (bad := _unusable(name, ref, got, None)) is not None:
        return bad
    with np.errstate(invalid="ignore"):
        diff = float(np.linalg.norm(np.subtract(got, ref, dtype=np.float64)))
    norm = float(np.linalg.norm(ref))
    if not (np.isfinite(diff) and np.isfinite(norm)):
        return _nonfinite(name, None)
    rel = diff / norm if norm > 0 else (0.0 if diff == 0 else np.inf)
    scale = max(norm, floor)
    return ProbeError(name, diff, scale if scale > 0 else 1.0, rel)


def _fmt(e: ProbeError, tol: float, width: int, diff: str = "max-abs") -> str:
    if e.problem:
        return f"{e.name:<{width}}  {e.problem}"
    mark = "ok" if e.passes(tol) else "DIVERGES"
    stage = f"  [{e.stage}]" if e.stage else ""
    return f"{e.name:<{width}}  {diff} {e.max_abs:.3e}  rel {e.rel:.3e}  error {e.error:.3e}  {mark}{stage}"


@dataclass
class Comparison:
    """Errors of every probe/tensor, in canonical order, against one tolerance."""

    label: str
    errors: list[ProbeError]
    tol: float
    kind: str = "layer"  # "layer" for probe outputs, "tensor" for canonical tensors
    missing: list[str] = field(default_factory=list)
    order: str = "execution"  # the order ``errors`` are in, and the culprit is searched in

    @property
    def first_divergence(self) -> ProbeError | None:
        """The first probe (in execution order) or tensor (in canonical order) out of tolerance."""
        return next((e for e in self.errors if not e.passes(self.tol)), None)

    @property
    def passed(self) -> bool:
        return not self.missing and self.first_divergence is None

    @property
    def max_error(self) -> float:
        return max((e.error for e in self.errors), default=0.0)

    def by_name(self) -> dict[str, ProbeError]:
        return {e.name: e for e in self.errors}

    def message(self) -> str:
        """A PaDiff-style report: the culprit, the layers before it and the stage outputs."""
        if self.missing:
            return f"{self.label}: missing from one side: {', '.join(self.missing[:8])}"
        first = self.first_divergence
        width = max((len(e.name) for e in self.errors), default=10)
        if first is None:
            return (
                f"{self.label}: all {len(self.errors)} {self.kind}s agree "
                f"(max error {self.max_error:.3e} <= {self.tol:g})"
            )
        i = self.errors.index(first)
        diff = "max-abs" if self.kind == "layer" else "L2 diff"
        bad = sum(not e.passes(self.tol) for e in self.errors)
        head = (
            f"{self.label}: first diverging {self.kind} in {self.order} order is '{first.name}' "
            f"({self.kind} {i + 1} of {len(self.errors)}; {bad} diverge): "
            + (
                first.problem
                if first.problem
                else f"{diff} {first.max_abs:.3e}, relative {first.rel:.3e}, "
                f"error {first.error:.3e} > tolerance {self.tol:g}"
            )
        )
        fmt = lambda e: _fmt(e, self.tol, width, diff)
        lines = [head]
        before = self.errors[max(0, i - PRECEDING) : i]
        stages = [e for e in self.errors[: max(0, i - PRECEDING)] if e.stage]
        if stages:
            lines.append("  earlier stage outputs:")
            lines += [f"      {fmt(e)}" for e in stages]
        if before:
            lines.append(f"  the {len(before)} {self.kind}s before it:")
            lines += [f"      {fmt(e)}" for e in before]
        lines.append(f"   -> {fmt(first)}")
        after = [e for e in self.errors[i + 1 :] if e.stage or e is self.errors[-1]]
        if after:
            lines.append("  later stage outputs:" if self.kind == "layer" else f"  the last {self.kind}:")
            lines += [f"      {fmt(e)}" for e in after]
        return "\n".join(lines)


def compare_probes(
    cfg: spec.Config,
    ref: Mapping[str, np.ndarray],
    got: Mapping[str, np.ndarray],
    *,
    tol: float = FORWARD_TOL,
    label: str = "",
) -> Comparison:
    """Compare two ``probe_outputs`` dicts probe by probe, in the canonical execution order.

    Every probe of ``spec.probes(cfg)`` and the final ``"output"`` are compared; a probe
    missing from either side is reported as such.
    """
    points = [(p.name, p.stage) for p in spec.probes(cfg)] + [("output", "output")]
    missing = [n for n, _ in points if n not in ref or n not in got]
    errors = [probe_error(n, ref[n], got[n], st) for n, st in points if n in ref and n in got]
    return Comparison(label, errors, tol, "layer", missing)


def compare_tensors(
    ref: Mapping[str, np.ndarray],
    got: Mapping[str, np.ndarray],
    *,
    tol: float,
    label: str = "",
    names: Sequence[str] | None = None,
    floor: float = 0.0,
    backward: bool = False,
) -> Comparison:
    """Compare two canonical tensor dicts by name, each error relative to the tensor's L2 norm.

    With ``backward=True`` (gradients, optimizer updates) the tensors are walked from the
    last layer to the first, the order backpropagation visits them: a wrong backward pass
    in one layer spoils that layer's gradients and every earlier layer's, so the first
    diverging tensor in backward order is the culprit.

    ``floor`` (an absolute L2 norm, 0 by default) is the smallest norm an error is measured
    against: gradients that are zero in exact arithmetic, such as that of a conv bias
    followed by a batch-statistics BatchNorm, hold only rounding noise, and their norm is
    no scale for it. Callers state the floor they use and why.
    """
    order = list(names) if names is not None else list(ref)
    missing = [n for n in order if n not in ref or n not in got]
    missing += [n for n in got if n not in ref and names is None]
    if backward:
        order.reverse()
    errors = [tensor_error(n, ref[n], got[n], floor) for n in order if n in ref and n in got]
    return Comparison(label, errors, tol, "tensor", missing, "backward" if backward else "canonical")
