"""What the benchmark measures, as data: models, settings, references, modes, the run's plan.

Everything here is plain data or validation, so the CLI, the workers and the report agree on one
table. It also defines :class:`BenchAdapter`, the interface every framework's ``resnet_<fw>/bench.py``
implements: the core decides *what* to time and how; the adapter alone knows *how to run it* in its
framework, which keeps every framework import out of :mod:`resnet_core`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from resnet_core import frameworks, spec
from resnet_core.spec import flops

from .machine import gpu_name

# The benchmarked networks: the spec's variants that carry bench sizes (one table for the suite,
# the report and the bench, so a new variant cannot be benchmarked under another name or size).
BENCH_MODELS: dict[str, spec.Variant] = {v.id: v for v in spec.VARIANTS.values() if v.bench}
MODES = ("eval", "train")  # eval-forward; training step = forward + loss + backward + SGD-momentum update


def _bench_spec(v: spec.Variant) -> spec.BenchSpec:
    if v.bench is None:
        raise ValueError(f"variant {v.id!r} is not benchmarked: expected one of {list(BENCH_MODELS)}")
    return v.bench


def builder_kwargs(v: spec.Variant) -> dict[str, Any]:
    """The builder options the bench uses: the variant's, overridden by its bench options.

    MiniModel is timed with ``softmax=False`` (logits out): the softmax costs nothing measurable and
    the training loss wants logits.
    """
    return {**v.kwargs, **_bench_spec(v).kwargs}


def bench_config(v: spec.Variant) -> spec.Config:
    """The config of the network as benchmarked (see :func:`builder_kwargs`)."""
    return spec.make_config(v.model, **builder_kwargs(v))


def default_batch(v: spec.Variant, device: str) -> int:
    """The variant's batch on ``device`` when ``--batch-size`` is not given."""
    b = _bench_spec(v)
    return b.gpu_batch if device == "gpu" else b.cpu_batch


def input_label(v: spec.Variant) -> str:
    """The image size as the report writes it, e.g. ``32x32``."""
    h, w = v.reference_size
    return f"{h}x{w}"


@dataclass(frozen=True)
class Setting:
    """One way of running a framework (eager, a compiler, an inference engine) and the modes it supports."""

    name: str
    label: str
    modes: tuple[str, ...] = MODES


# Plain eager first: it is the baseline every other setting is compared with.
SETTINGS: dict[str, tuple[Setting, ...]] = {
    "torch": (
        Setting("eager", "eager, NCHW (plain)"),
        Setting("channels_last", "eager, channels_last memory format"),
        Setting("compile", "torch.compile (inductor, default mode)"),
    ),
    "keras": (
        Setting("eager", "run_eagerly=True (plain eager)"),
        Setting("graph", "tf.function graph, jit_compile=False"),
        Setting("xla", "tf.function + XLA, jit_compile=True"),
    ),
    "keras-torch": (
        Setting("eager", "Keras on torch backend, run_eagerly=True (plain eager)"),
        Setting("default", "Keras on torch backend, compile() defaults"),
    ),
    "paddle": (
        Setting("eager", "dygraph (plain eager)"),
        Setting("to_static", "paddle.jit.to_static (default SOT)"),
        Setting("inference", "Paddle Inference API (jit.save + predictor, IR passes, oneDNN on CPU)", modes=("eval",)),
    ),
}
ALL_FRAMEWORKS = tuple(SETTINGS)
EAGER = "eager"

# The framework's own ResNet-18 (imagenet stem, 1000 classes), or why there is none.
REFERENCES: dict[str, tuple[str, str]] = {
    "torch": ("torchvision.models.resnet18", ""),
    "paddle": ("paddle.vision.models.resnet18", ""),
    "keras": ("", "keras.applications has no ResNet-18 (its ResNets are 50/101/152, another network)"),
    "keras-torch": ("", "keras.applications has no ResNet-18 (its ResNets are 50/101/152, another network)"),
}
REFERENCE_MODEL = "resnet18-imagenet"

LR, MOMENTUM = 0.01, 0.9
MIN_ROUND_S = 0.5  # auto iterations: a timed round lasts at least this long, so timer and scheduler noise stay small


class Unavailable(Exception):
    """A setting or reference that cannot run here; the message says why."""


def one_line(e: BaseException) -> str:
    """An exception as one short line: results and table cells must not break across lines."""
    return f"{type(e).__name__}: " + " ".join(str(e).split())[:400]


@runtime_checkable
class BenchAdapter(Protocol):
    """One framework inside a worker: builds models and returns a step function per setting.

    Implemented by ``resnet_torch.bench``, ``resnet_keras.bench`` and ``resnet_paddle.bench``, each
    returned by the module's ``bench_adapter(threads, device, tf32)``. ``model``/``kwargs`` are the
    framework-neutral builder arguments (``build(model, **kwargs)``); ``weights`` are canonical weights.
    Errors raised by :meth:`step` or by a step are recorded as a failed setting, not a crash.
    """

    def meta(self) -> dict[str, Any]:
        """Versions and the thread counts the framework ended up with (reported per worker)."""
        ...

    def gpu_missing(self) -> str:
        """'' when the framework sees the GPU, else why not (then the worker times nothing)."""
        ...

    def ours(self, model: str, kwargs: dict[str, Any], weights: dict[str, np.ndarray]) -> Callable[[], Any]:
        """A factory of our model with ``weights`` loaded, on the adapter's device."""
        ...

    def reference(self, model: str, kwargs: dict[str, Any], weights: dict[str, np.ndarray]) -> Callable[[], Any]:
        """A factory of the framework's own ResNet-18 with the same weights; raises :class:`Unavailable`."""
        ...

    def step(
        self, factory: Callable[[], Any], setting: str, mode: str, x: np.ndarray, y: np.ndarray
    ) -> Callable[[], Any]:
        """Build a model from ``factory`` for ``setting`` and return one timed step on NCHW ``x`` / labels ``y``.

        A step must return only when its work has finished (synchronized on a GPU); an eval step
        returns the model's output, for :meth:`to_numpy`.
        """
        ...

    def to_numpy(self, out: Any) -> np.ndarray:
        """An eval step's output as a host array (compared with plain eager's)."""
        ...

    def sync(self) -> None:
        """Wait for queued device work (a no-op on the CPU and where steps return host data)."""
        ...


def flop_table(models: list[str]) -> dict[str, dict[str, Any]]:
    """Analytic FLOPs per image of each benchmarked model, from the spec (the same for every framework)."""
    out = {}
    for mid in models:
        v = BENCH_MODELS[mid]
        cfg = bench_config(v)
        h, w = v.reference_size
        out[mid] = {
            "input": input_label(v),
            "gmacs_per_image": flops.macs(cfg, h, w) / 1e9,
            "eval_gflop_per_image": flops.forward_flops(cfg, h, w) / 1e9,
            "train_gflop_per_image": flops.train_step_flops(cfg, h, w) / 1e9,
        }
    return out


@dataclass
class Plan:
    """The resolved options of one run; every worker gets it (as a dict, without the notes)."""

    models: list[str]
    frameworks: list[str]
    settings: list[str] | None
    devices: list[str]
    threads: int
    warmup: int
    repeats: int
    iters: int
    batch: int | None
    smoke: bool
    timeout: int
    notes: list[str] = field(default_factory=list)

    def for_worker(self) -> dict[str, Any]:
        """The plan as a worker and ``bench.json`` see it."""
        return {k: v for k, v in self.__dict__.items() if k != "notes"}


def _positive(name: str, v: int | None, minimum: int = 1) -> None:
    if v is not None and v < minimum:
        raise ValueError(f"--{name} must be >= {minimum}, received {v}")


def make_plan(args: argparse.Namespace) -> Plan:
    """Validate the options and resolve the defaults (installed frameworks, thread count, devices)."""
    for name in ("batch_size", "threads", "repeats", "timeout"):
        _positive(name.replace("_", "-"), getattr(args, name))
    _positive("warmup", args.warmup, 0)
    _positive("iters", args.iters, 0)
    fws = list(dict.fromkeys(args.framework or frameworks.available()))
    if not fws:
        raise RuntimeError("no framework installed: pip install 'resnet-parity[all]'")
    missing = [
        f
        for f in fws
        if not frameworks.installed("torch" if f == "keras-torch" else f)
        or (f == "keras-torch" and not frameworks.installed("keras"))
    ]
    if missing:
        raise ImportError(f"framework(s) {missing} not installed: pip install 'resnet-parity[all]'")
    known = {s.name for f in fws for s in SETTINGS[f]}
    unknown = sorted(set(args.setting or ()) - known)
    if unknown:
        raise ValueError(f"unknown --setting {unknown} for {fws}: expected some of {sorted(known)}")
    gpu = gpu_name()
    if args.device == "gpu" and not gpu:
        raise RuntimeError("--device gpu: no NVIDIA GPU found (no nvidia-smi / /dev/nvidia0)")
    devices = ["cpu"] if args.device == "cpu" or not gpu else (["gpu"] if args.device == "gpu" else ["cpu", "gpu"])
    plan = Plan(
        models=list(dict.fromkeys(args.model or BENCH_MODELS)),
        frameworks=fws,
        settings=args.setting,
        devices=devices,
        threads=args.threads or len(os.sched_getaffinity(0)),
        warmup=args.warmup,
        repeats=args.repeats,
        iters=args.iters,
        batch=args.batch_size,
        smoke=args.smoke,
        timeout=args.timeout,
    )
    if args.smoke:  # one timed iteration of everything, at a tiny batch
        plan.warmup, plan.repeats, plan.iters, plan.batch = 0, 1, 1, args.batch_size or 2
    if args.device == "auto" and not gpu:
        plan.notes.append("no GPU on this machine: CPU only")
    return plan
