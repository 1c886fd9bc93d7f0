"""The framework interface, written down, and lazy access to the packages that implement it.

Every ``resnet_<framework>`` package (``resnet_torch``, ``resnet_keras``, ``resnet_paddle``)
provides :class:`FrameworkPackage` at its top level; ``parity_tests/test_interface.py`` checks
that each one does, with the same parameter names. The core reaches a framework only through
this interface and only from the top (the CLI, the parity matrix, the bench workers); the
framework packages call the core, and never hand themselves to it.

Paddle must be loaded before TensorFlow in one process (see :mod:`resnet_core.runtime`), so
:func:`load_all` imports Paddle first.

Implementations: the parity matrix compares *implementations*, which are the three frameworks in
this process plus Keras on the backends this process does not run (:data:`WORKERS`: Keras on JAX
and on PyTorch). Keras fixes its backend per process, so those run in worker processes
(:mod:`resnet_core.remote`) and are reached through the same interface. An implementation's
*framework* says whose names and layouts it uses (``keras-jax`` is ``keras``); its *label* says
which backend ran (``keras/tensorflow``, ``keras/jax``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import runtime
from .names import FRAMEWORKS
from .spec import Config, Counts

_DISTRIBUTIONS = {"torch": ("torch",), "keras": ("keras",), "paddle": ("paddle",)}
SAFE_ORDER = ("paddle", "torch", "keras")
# The library each Keras backend loads.
KERAS_BACKEND_LIBRARY = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


@dataclass(frozen=True)
class Worker:
    """An implementation that runs in a worker process: ``framework``'s package with Keras on ``backend``."""

    id: str
    framework: str
    backend: str
    env: tuple[tuple[str, str], ...] = ()  # set in the worker's environment (a user's own value wins)
    extra: str = ""  # pip extra that installs it
    # functions of the package (dotted paths under it) the worker calls once after importing it
    setup: tuple[str, ...] = ("backends.keep_float64",)
    # a persistent compilation cache's environment, set where its file lock (the filelock package) is installed
    cache: tuple[tuple[str, str], ...] = ()


def cache_dir() -> str:
    """Where this project keeps what it can rebuild (JAX's compiled programs): ``$XDG_CACHE_HOME/resnet-parity``."""
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "resnet-parity")


# JAX's persistent compilation cache, shared by every Keras-on-JAX worker: eager Keras on JAX compiles each
# op at each new shape, which made the first ResNet-18 build 4.4 s and the first forward 2.1 s in every new
# process (0.8 s and 0.5 s from the cache, measured). Every program is kept (JAX's defaults keep only those
# that took over 1 s to compile); a size limit turns on JAX's file lock, so workers started side by side
# (pytest-xdist) never read an entry another one is writing, and bounds the folder.
JAX_CACHE = (
    ("JAX_COMPILATION_CACHE_DIR", os.path.join(cache_dir(), "jax")),
    ("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0"),
    ("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0"),
    ("JAX_COMPILATION_CACHE_MAX_SIZE", str(512 * 2**20)),
)

WORKERS = {
    w.id: w
    for w in (
        # JAX computes float64 as float32 unless x64 is on (the gradient levels run in float64); XLA's
        # deterministic GPU kernels (no effect on the CPU); the compilation cache. Both workers keep float64
        # in Keras' promotion (setup: resnet_keras.backends.keep_float64), which maps it to float32 outside
        # TensorFlow.
        Worker(
            "keras-jax",
            "keras",
            "jax",
            (("JAX_ENABLE_X64", "1"), ("XLA_FLAGS", "--xla_gpu_deterministic_ops=true")),
            "jax",
            cache=JAX_CACHE,
        ),
        Worker("keras-torch", "keras", "torch", (), "keras,torch"),
    )
}
IMPLEMENTATIONS = (*FRAMEWORKS, *WORKERS)


def keras_backend() -> str:
    """The Keras backend of this process: Keras' own answer once it is imported, else ``KERAS_BACKEND``."""
    keras = sys.modules.get("keras")
    backend = getattr(keras, "backend", None)
    if backend is not None and hasattr(backend, "backend"):
        return backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def family(impl: str) -> str:
    """The framework whose names, layouts and conventions ``impl`` uses (``keras-jax`` -> ``keras``)."""
    if impl in WORKERS:
        return WORKERS[impl].framework
    if impl not in FRAMEWORKS:
        raise ValueError(f"unknown implementation {impl!r}: expected one of {list(IMPLEMENTATIONS)}")
    return impl


def label(impl: str) -> str:
    """``impl`` as a report names it, with the Keras backend that ran: ``keras/tensorflow``, ``keras/jax``."""
    if impl in WORKERS:
        return f"{WORKERS[impl].framework}/{WORKERS[impl].backend}"
    return f"keras/{keras_backend()}" if impl == "keras" else impl


def _libraries(impl: str) -> tuple[str, ...]:
    if impl in WORKERS:
        w = WORKERS[impl]
        return (*_DISTRIBUTIONS[w.framework], KERAS_BACKEND_LIBRARY[w.backend])
    if impl not in _DISTRIBUTIONS:
        raise ValueError(f"unknown implementation {impl!r}: expected one of {list(IMPLEMENTATIONS)}")
    if impl == "keras":
        return ("keras", KERAS_BACKEND_LIBRARY.get(keras_backend(), keras_backend()))
    return _DISTRIBUTIONS[impl]


def set_aside_note(backend: str) -> str:
    """What :func:`resnet_core.runtime.own_keras_backend` did with a user's ``KERAS_BACKEND=backend``, in one line."""
    worker = next((w.id for w in WORKERS.values() if w.backend == backend), None)
    runs = ", ".join((runtime.OWN_KERAS_BACKEND, *(w.backend for w in WORKERS.values())))
    where = (
        f"Keras on {backend} runs in a worker process (`{worker}`)"
        if worker
        else f"{backend!r} is not a Keras backend this project runs ({runs})"
    )
    return (
        f"KERAS_BACKEND={backend} set aside: Keras runs on {runtime.OWN_KERAS_BACKEND} in this process (`keras`); "
        f"{where}"
    )


def _extra(impl: str) -> str:
    return WORKERS[impl].extra if impl in WORKERS else impl


@runtime_checkable
class FrameworkPackage(Protocol):
    """What every ``resnet_<framework>`` package provides (as module-level functions).

    Models are the framework's own objects; arrays in and out are numpy, NCHW, in canonical
    names and layouts. ``model.config`` is the model's :class:`resnet_core.spec.Config`.
    """

    FRAMEWORK: str

    # models
    # initialize=False: every weight is replaced next, so the build may skip drawing random initial values
    def build(self, model: str, *, initialize: bool = True, **kwargs: Any) -> Any: ...
    def config_of(self, model: Any) -> Config: ...
    def count_params(self, model: Any) -> Counts: ...

    # weights
    def export_weights(self, model: Any) -> dict[str, np.ndarray]: ...
    def import_weights(self, model: Any, weights: Mapping[str, np.ndarray]) -> None: ...

    # numerics
    def probe_outputs(self, model: Any, x: np.ndarray, *, training: bool = False) -> dict[str, np.ndarray]: ...
    def gradients(self, model: Any, x: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]: ...
    def optimizer_step(
        self, model: Any, x: np.ndarray, labels: np.ndarray, optimizer: str = "sgd", **hyper: Any
    ) -> dict[str, np.ndarray]: ...
    # a seed recipe (resnet_core.recipes.Recipe) trained with the framework's own optimizer, schedule and loop
    def make_trainer(self, model: Any, recipe: Any, total_steps: int) -> Any: ...

    # dtype and device
    def cast_model(self, model: Any, dtype: str, *, into: Any | None = None) -> Any: ...
    def on_device(self, model: Any, device: str) -> AbstractContextManager[Any]: ...
    def tf32(self, enabled: bool) -> AbstractContextManager[None]: ...
    def gpu_unavailable_reason(self) -> str | None: ...

    # files
    def load(self, path: str | os.PathLike, *, names: str | None = None, **overrides: Any) -> Any: ...
    def save(self, model: Any, path: str | os.PathLike, *, overwrite: bool = True) -> None: ...


def installed(framework: str) -> bool:
    """Whether the framework's (or implementation's) libraries are importable (without importing them)."""
    return missing_reason(framework) is None


def missing_reason(impl: str) -> str | None:
    """Why ``impl`` cannot run here (a library is not installed, or it is this process' own Keras), or ``None``."""
    missing = [m for m in _libraries(impl) if importlib.util.find_spec(m) is None]
    if missing:
        return f"{label(impl)} needs {', '.join(missing)}, not installed: pip install 'resnet-parity[{_extra(impl)}]'"
    if impl in WORKERS and WORKERS[impl].backend == keras_backend():  # a worker would repeat `keras`'s rows
        return (
            f"{label(impl)} is this process' own Keras (KERAS_BACKEND={keras_backend()}): "
            "the implementation `keras` runs it"
        )
    return None


def available(implementations: bool = False) -> list[str]:
    """Installed frameworks, in the canonical order torch, keras, paddle (then the worker implementations)."""
    return [f for f in (IMPLEMENTATIONS if implementations else FRAMEWORKS) if installed(f)]


def get(framework: str) -> FrameworkPackage:
    """The package ``resnet_<framework>`` (imported on first use); a worker implementation's, in its worker."""
    if framework not in IMPLEMENTATIONS:
        raise ValueError(f"unknown framework {framework!r}: expected one of {list(IMPLEMENTATIONS)}")
    reason = missing_reason(framework)
    if reason:
        raise ImportError(reason)
    if framework in WORKERS:
        from . import remote

        w = WORKERS[framework]
        return remote.package(framework, w.framework, worker_env(w), w.setup)  # type: ignore[return-value]
    return importlib.import_module(f"resnet_{framework}")  # type: ignore[return-value]


def worker_env(w: Worker) -> dict[str, str]:
    """The environment of ``w``'s process: this one's, :data:`runtime.ENVIRONMENT`, the backend, ``w.env`` and
    ``w.cache`` (a user's own value wins)."""
    from . import runtime

    runtime.set_environment()
    env = {**os.environ, "KERAS_BACKEND": w.backend}
    cache = w.cache if importlib.util.find_spec("filelock") is not None else ()
    for k, v in (*w.env, *cache):
        env[k] = f"{env[k]} {v}" if k == "XLA_FLAGS" and k in env and v not in env[k] else env.get(k, v)
    return env


def load_all(frameworks: list[str] | tuple[str, ...] | None = None) -> dict[str, ModuleType]:
    """Import several framework packages in the safe order (workers started); returns them keyed by name."""
    wanted = list(frameworks) if frameworks is not None else available()
    for f in wanted:
        if f in WORKERS and missing_reason(f) is None:  # their imports run while this process imports its own
            from . import remote

            remote.start(f, worker_env(WORKERS[f]), WORKERS[f].framework, WORKERS[f].setup)
    mods = {f: get(f) for f in (*SAFE_ORDER, *WORKERS) if f in wanted}
    return {f: mods[f] for f in IMPLEMENTATIONS if f in mods}
