"""The process runtime, set in one place: the environment the frameworks read at import, and
TensorFlow/Keras and PaddlePaddle coexisting in one process, in either import order.

The environment
---------------
:data:`ENVIRONMENT` holds every variable this project sets for the frameworks, each with the reason.
:func:`set_environment` sets them with ``os.environ.setdefault`` (a user's own setting wins); every
``resnet_<fw>`` package calls it before importing its framework, and ``run.sh`` exports the same
values for the command line. Variables only work when set before the framework loads, so a
process that imported torch/tensorflow/paddle itself first keeps whatever it had.

The hazard
----------
``import tensorflow`` (or ``import keras`` on its TensorFlow backend) followed by
``import paddle`` kills Python with SIGSEGV while ``paddle/base/core.py`` imports the
``libpaddle`` extension; the other order works.  gdb shows the crash inside libpaddle's
static constructors (operator registration), before any Paddle Python code runs::

    #0 google::protobuf::internal::RepeatedPtrFieldBase::AddOutOfLineHelper(void*)  [paddle/libs/libphi_core.so]
    #1 paddle::framework::OpProtoAndCheckerMaker::AddInput(...)                     [paddle/base/libpaddle.so]
    #2 paddle::operators::PyFuncOpMaker::Make()                                     [libpaddle.so]
    #4 paddle::framework::OperatorRegistrar<paddle::operators::PyFuncOp, ...>::OperatorRegistrar(char const*)
    #5 call_init / _dl_init / dlopen("paddle/base/libpaddle.so")  <- _PyImport_FindSharedFuncptr

Cause: two incompatible protobuf runtimes and ELF symbol interposition.
``libphi_core.so`` links an old protobuf (3.x ABI: ``VerifyVersion(int, int, const char*)``)
statically and exports its ~2300 ``google::protobuf`` symbols with default visibility;
``libtensorflow_framework.so.2`` links a new one (``VerifyVersion(int, const char*)``, another
``RepeatedPtrField`` layout) and exports ~4200 of them.  TensorFlow imports
``_pywrap_tensorflow_internal`` with ``RTLD_GLOBAL`` (``tensorflow/python/pywrap_dlopen_global_flags.py``),
which puts ``libtensorflow_framework.so.2`` into the process' global symbol scope
(``LD_DEBUG=scopes``: "add .../libtensorflow_framework.so.2 to global scope").  The global scope is
searched before a library's own dependencies, so when libpaddle is dlopen'ed afterwards,
``LD_DEBUG=bindings`` shows ~1770 of libphi_core's own protobuf references bound to TensorFlow's
copy, e.g. ``binding file libphi_core.so to libtensorflow_framework.so.2: normal symbol
_ZN6google8protobuf8internal20RepeatedPtrFieldBase14InternalExtendEi``.  Paddle's
``AddOutOfLineHelper`` calls TF's ``InternalExtend(int)``, which lays the repeated field out the new
way, then reads ``rep_`` the old way -> NULL dereference (``mov (%rax),%edx`` right after the call).
When Paddle is loaded first nothing is in the global scope (Python loads extensions ``RTLD_LOCAL``),
so each library binds to its own protobuf.  ``import torch`` in between changes nothing.

The fix
-------
Load ``libpaddle.so`` with ``RTLD_DEEPBIND`` when TensorFlow's libraries are already loaded: the
dynamic linker then searches libpaddle's own dependency tree (libphi_core's protobuf) before the
global scope.  With it, ``LD_DEBUG=bindings`` shows zero bindings from any Paddle library to
TensorFlow's (and none the other way), and both frameworks run side by side.  It is done by
``dlopen``-ing that one file through :mod:`ctypes` just before Paddle's own import of it (the
extension loader then reuses the loaded, already-relocated object), so no other extension module is
affected.  ``RTLD_DEEPBIND`` is used only when needed, because it also bypasses interposers such as
an ``LD_PRELOAD``-ed malloc; set ``RESNET_PARITY_NO_DEEPBIND=1`` to turn the fix off (then importing
``resnet_paddle`` after TensorFlow raises :class:`ImportError` instead).

* :func:`prepare_keras` (called by ``resnet_keras`` before it imports keras) installs a tiny
  :data:`sys.meta_path` finder that applies the fix to any later ``import paddle``, however it is
  spelled.  It imports nothing and costs microseconds (importing Paddle first instead would cost
  about 0.7 s on a 2-core machine; the ctypes load of libpaddle.so alone takes about 0.15 s).
* :func:`prepare_paddle` (called by ``resnet_paddle`` before it imports paddle) does the same and,
  when TensorFlow is already loaded, loads libpaddle.so right away with ``RTLD_DEEPBIND``; where
  that is impossible (no glibc ``RTLD_DEEPBIND``, fix disabled, load error) it raises a clear
  :class:`ImportError` instead of letting the process crash.

A plain ``import tensorflow; import paddle`` in a process where neither package was prepared
still crashes: that is Paddle's and TensorFlow's bug, not something a library can intercept.

This module imports only the standard library; it never imports a framework.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.machinery
import importlib.util
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator

__all__ = [
    "ENVIRONMENT",
    "NOISE",
    "OWN_KERAS_BACKEND",
    "PaddleAfterTensorFlowError",
    "own_keras_backend",
    "paddle_loaded",
    "prepare_keras",
    "prepare_paddle",
    "prepare_torch",
    "quiet_start_up",
    "set_environment",
    "tensorflow_loaded",
]

#: Variable -> (value, why). Read by the frameworks at import time only.
ENVIRONMENT: dict[str, tuple[str, str]] = {
    # With three OpenMP runtimes in one process, spinning idle threads made a training step 13x
    # slower (4.0 s vs 0.3 s) and a forward pass 10-50x slower on 2 cores.
    "OMP_WAIT_POLICY": ("PASSIVE", "idle OpenMP threads sleep instead of spinning against the other frameworks'"),
    # TensorFlow's and Paddle's start-up chatter (absl, cpu_feature_guard, glog) buries the output.
    "TF_CPP_MIN_LOG_LEVEL": ("3", "TensorFlow C++ logging: errors only"),
    "GLOG_minloglevel": ("2", "Paddle's glog: errors only"),
}


#: Start-up lines that no variable turns off, filtered while a framework is imported (:func:`quiet_start_up`):
#: framework -> (variable, pattern, why). A line is dropped only while ``variable`` (the user's own setting
#: wins over :data:`ENVIRONMENT`'s default) asks for that framework's info messages to be hidden (>= 1).
NOISE: tuple[tuple[str, str, str, str], ...] = (
    # TF 2.21 logs through absl; these come from static initialisers of libtensorflow_framework /
    # libtensorflow_cc (tensorflow/core/util/port.cc, IsMklEnabled) before absl::InitializeLog() and before
    # TF reads TF_CPP_MIN_LOG_LEVEL, so neither that variable nor absl's flags (no environment hook) reach
    # them; TF_ENABLE_ONEDNN_OPTS=0 would, but it changes the numerics. Measured: with
    # TF_CPP_MIN_LOG_LEVEL=3 a plain `import tensorflow` still prints both lines, twice.
    ("keras", "TF_CPP_MIN_LOG_LEVEL", r"^WARNING: All log messages before absl::InitializeLog\(\) is called", "absl"),
    ("keras", "TF_CPP_MIN_LOG_LEVEL", r"^I\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on", "absl"),
    ("keras", "TF_CPP_MIN_LOG_LEVEL", r"cpu_feature_guard\.cc:\d+\]", "CPU instruction notice"),
    # Paddle's import warns (a Python UserWarning) that ccache is missing: it matters only to someone
    # compiling custom C++ operators, which importing Paddle does not do.
    ("paddle", "GLOG_minloglevel", r"No ccache found", "UserWarning from paddle.utils.cpp_extension"),
)


def _quiet_wanted(variable: str) -> bool:
    try:
        return int(os.environ.get(variable, ENVIRONMENT[variable][0])) >= 1
    except ValueError:
        return True


@contextlib.contextmanager
def quiet_start_up(framework: str) -> Iterator[None]:
    """While importing ``framework``, drop its start-up lines listed in :data:`NOISE` from stderr.

    Python warnings that match are ignored; the process' file descriptor 2 (where C++ libraries
    write) goes through a pipe whose reader thread forwards every other line at once, so nothing
    else is lost or delayed, even if the import crashes.
    """
    patterns = [re.compile(pat) for fw, var, pat, _ in NOISE if fw == framework and _quiet_wanted(var)]
    if not patterns:
        yield
        return
    with warnings.catch_warnings():
        for p in patterns:
            warnings.filterwarnings("ignore", message=f".*{p.pattern.lstrip('^')}")
        with _filtered_fd2(patterns):
            yield


@contextlib.contextmanager
def _filtered_fd2(patterns: list[re.Pattern[str]]) -> Iterator[None]:
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2: nothing to filter
        yield
        return
    r, w = os.pipe()
    os.dup2(w, 2)
    os.close(w)

    def pump() -> None:
        with os.fdopen(r, "rb") as f:
            for line in f:
                if not any(p.search(line.decode(errors="replace")) for p in patterns):
                    os.write(saved, line)

    t = threading.Thread(target=pump, name="resnet-parity-stderr-filter", daemon=True)
    t.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end (unless a child process inherited it)
        t.join(timeout=5)
        os.close(saved)


def set_environment() -> None:
    """Set :data:`ENVIRONMENT` where the user has not set the variable already."""
    for name, (value, _why) in ENVIRONMENT.items():
        os.environ.setdefault(name, value)


#: The Keras backend of this project's own processes (the ``resnet-parity`` command and the parity suite): there the
#: implementation ``keras`` is Keras on TensorFlow, and Keras on JAX and on PyTorch run in worker processes. A user's
#: ``KERAS_BACKEND=jax`` (or ``"backend"`` in ``keras.json``) would otherwise make ``keras`` a second Keras on JAX,
#: with TensorFlow in no row and no test.
OWN_KERAS_BACKEND = "tensorflow"


def own_keras_backend() -> str | None:
    """Run this process' Keras on :data:`OWN_KERAS_BACKEND`: for the command line and the suite, never on import.

    Done only where TensorFlow is installed (a Keras-on-JAX user without it keeps Keras on JAX) and Keras is not
    imported yet (its backend is fixed then). Returns the user's own ``KERAS_BACKEND`` that this set aside, if it
    named another backend, else ``None``.
    """
    if "keras" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return None
    user = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = OWN_KERAS_BACKEND
    return user if user and user != OWN_KERAS_BACKEND else None


#: Module names of Paddle's core extension (Paddle 3.x, and 2.5/2.6 where ``base`` was ``fluid``).
_LIBPADDLE_MODULES = ("paddle.base.libpaddle", "paddle.fluid.libpaddle")
#: Shared objects whose presence means TensorFlow's protobuf may already be in the global scope.
_TF_SONAMES = ("libtensorflow_framework.so.2", "libtensorflow_cc.so.2")
_DISABLE_ENV = "RESNET_PARITY_NO_DEEPBIND"

_lock = threading.Lock()
_handles: list = []  # keep the ctypes handles alive (and the libraries loaded) for the process' life


class PaddleAfterTensorFlowError(ImportError):
    """Paddle cannot be loaded safely because TensorFlow was imported first."""


def _so_loaded(soname: str) -> bool:
    """Whether a shared object is already mapped into this process (dlopen with RTLD_NOLOAD)."""
    noload = getattr(os, "RTLD_NOLOAD", None)
    if noload is None:
        return False
    try:
        ctypes.CDLL(soname, mode=os.RTLD_NOW | noload)
    except OSError:
        return False
    return True


def tensorflow_loaded() -> bool:
    """Whether TensorFlow's native libraries are loaded (``import tensorflow`` or keras on TF ran)."""
    if any(m == "tensorflow" or m.startswith("tensorflow.") for m in list(sys.modules)):
        return True
    return any(_so_loaded(s) for s in _TF_SONAMES)


def paddle_loaded() -> bool:
    """Whether Paddle's core extension libpaddle is already loaded."""
    return any(m in sys.modules for m in _LIBPADDLE_MODULES) or _so_loaded("libpaddle.so")


def _paddle_installed() -> bool:
    try:
        return importlib.util.find_spec("paddle") is not None
    except (ImportError, ValueError):
        return False


def _deepbind_available() -> bool:
    if os.environ.get(_DISABLE_ENV, "").strip() not in ("", "0"):
        return False
    if not sys.platform.startswith("linux") or not hasattr(os, "RTLD_DEEPBIND"):
        return False
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):
        return False


def _libpaddle_paths() -> list[str]:
    """Candidate paths of libpaddle's extension file, found without importing Paddle."""
    try:
        spec = importlib.util.find_spec("paddle")
    except (ImportError, ValueError):
        return []
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    found = []
    for root in roots:
        for sub in ("base", "fluid"):
            d = os.path.join(root, sub)
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                p = os.path.join(d, "libpaddle" + suffix)
                if os.path.isfile(p):
                    found.append(p)
    return found


def _load_deepbound(path: str) -> None:
    """dlopen ``path`` with RTLD_DEEPBIND so it and its dependencies bind to their own symbols first."""
    with _lock:
        _handles.append(ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL | os.RTLD_DEEPBIND))


class _DeepbindLibpaddleFinder:
    """Meta-path finder that pre-loads libpaddle with RTLD_DEEPBIND when TensorFlow is already loaded.

    It never returns a spec itself: it only loads the file found by the regular path finder and then
    lets that finder import it as usual (the dynamic loader hands back the already-loaded object).
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _LIBPADDLE_MODULES or fullname in sys.modules:
            return None
        if not tensorflow_loaded() or not _deepbind_available():
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            return None
        try:
            _load_deepbound(spec.origin)
        except OSError as exc:
            raise PaddleAfterTensorFlowError(
                _message(f"loading {spec.origin} with RTLD_DEEPBIND failed: {exc}")
            ) from exc
        return None

    def invalidate_caches(self):
        pass


_finder = _DeepbindLibpaddleFinder()


def _install_finder() -> None:
    with _lock:
        if not any(isinstance(f, _DeepbindLibpaddleFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _finder)


def _message(detail: str = "") -> str:
    why = f" ({detail})" if detail else ""
    return (
        "Cannot import PaddlePaddle: TensorFlow was imported first in this process. "
        "TensorFlow loads its libraries with RTLD_GLOBAL, so its protobuf runtime takes precedence over "
        "the incompatible protobuf inside libpaddle/libphi_core, and loading libpaddle after TensorFlow "
        "crashes Python with a segmentation fault; the usual work-around (loading libpaddle with "
        f"RTLD_DEEPBIND) is not available here{why}. To use both, import resnet_paddle (or paddle) "
        "before tensorflow/keras, or import resnet_keras, which arranges a safe order, before "
        "tensorflow/keras, or run the two frameworks in separate processes."
    )


def prepare_torch() -> None:
    """Call before importing torch: the environment (torch needs no import-order fix)."""
    set_environment()


def prepare_keras() -> None:
    """Call before importing keras/tensorflow: the environment, and a later ``import paddle`` made safe.

    Installs the RTLD_DEEPBIND meta-path finder (no import, negligible cost).  Where RTLD_DEEPBIND
    cannot be used and Paddle is installed but not imported yet, imports Paddle now, before
    TensorFlow, which is the other safe order (about 0.7 s).
    """
    set_environment()
    _install_finder()
    if _deepbind_available():
        return
    if "paddle" in sys.modules or tensorflow_loaded() or not _paddle_installed():
        return
    # A broken Paddle must not break Keras; resnet_paddle will report it.
    with contextlib.suppress(Exception):
        import paddle  # noqa: F401  (first, while it is still safe)


def prepare_paddle() -> None:
    """Call before importing paddle: loads libpaddle safely or raises :class:`ImportError`.

    If TensorFlow's libraries are already loaded and libpaddle is not, libpaddle is loaded now with
    RTLD_DEEPBIND; where that is impossible, raises :class:`PaddleAfterTensorFlowError` (an
    ImportError) explaining the order problem, instead of letting the process segfault.
    """
    set_environment()
    _install_finder()
    if paddle_loaded() or not tensorflow_loaded():
        return
    if not _deepbind_available():
        raise PaddleAfterTensorFlowError(_message(f"RTLD_DEEPBIND needs Linux/glibc and {_DISABLE_ENV} unset"))
    paths = _libpaddle_paths()
    if not paths:
        return  # Paddle is not installed (or laid out differently): the import itself will say so
    try:
        _load_deepbound(paths[0])
    except OSError as exc:
        raise PaddleAfterTensorFlowError(_message(f"loading {paths[0]} with RTLD_DEEPBIND failed: {exc}")) from exc
