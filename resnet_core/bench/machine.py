"""The machine the benchmark runs on: CPU and GPU, CPU time taken by others, the float32 matmul peak.

The peak is what the report's "% of peak" divides by, so it is measured in the same run, with the
same thread count, by every library that can do a float32 matmul here. Its framework imports happen
inside :func:`peak_job`, which runs only in a worker subprocess: importing this module imports no
framework (and :func:`gpu_name` asks ``nvidia-smi``, not a framework, whether there is a GPU).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from resnet_core import frameworks


def gpu_name() -> str:
    """The NVIDIA GPU's name, or '' where there is none (checked without importing any framework)."""
    if not shutil.which("nvidia-smi") and not Path("/dev/nvidia0").exists():
        return ""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "NVIDIA GPU (nvidia-smi unavailable)"
    return out.strip().splitlines()[0] if out.strip() else ""


def machine_info(threads: int) -> dict[str, Any]:
    """CPU model and the SIMD flags that decide which kernels run, CPU counts, GPU, platform."""
    cpu, flags = platform.processor() or "unknown CPU", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in ("unknown CPU", platform.processor()):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in have)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "threads": threads,
        "gpu": gpu_name() or None,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def cpu_busy_s() -> float | None:
    """Seconds of CPU time spent by everything on the machine (from /proc/stat), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def children_cpu_s() -> float:
    """CPU seconds of this process' finished children: subtracted from :func:`cpu_busy_s` to find others' load."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _cpu_matmuls(a: np.ndarray, threads: int, with_tf: bool = True) -> dict[str, Callable[[], Any]]:
    """One float32 ``a @ a`` per library that can do it here. BLAS builds often take an AVX2 path on AMD
    CPUs while oneDNN (torch's convolutions, TensorFlow) uses AVX-512, so every one is tried."""
    out: dict[str, Callable[[], Any]] = {"numpy": lambda: a @ a}
    if frameworks.installed("torch"):
        import torch

        torch.set_num_threads(threads)
        t = torch.from_numpy(a)
        out["torch"] = lambda: t @ t
        linear = getattr(torch._C._nn, "mkldnn_linear", None)  # oneDNN's matmul, as torch's mkldnn path calls it
        if linear is not None and torch.backends.mkldnn.is_available():
            tm = t.to_mkldnn()
            out["torch-onednn"] = lambda: linear(tm, tm)
    if with_tf and frameworks.installed("keras"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        ta = tf.constant(a)
        mm = tf.function(lambda x: tf.linalg.matmul(x, x))
        out["tensorflow"] = lambda: mm(ta)
    return out


def peak_job(job: dict[str, Any]) -> dict[str, Any]:
    """The best float32 square-matmul GFLOP/s of every library here, with the run's thread count."""
    device, smoke, threads = job["device"], job["smoke"], job["plan"]["threads"]
    n = 512 if smoke else (8192 if device == "gpu" else 4096)
    reps = 2 if smoke else 4
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    found: dict[str, float] = {}

    def best(f: Callable[[], Any], sync: Callable[[], None] = lambda: None) -> float:
        f()
        sync()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            f()
            sync()
            times.append(time.perf_counter() - t0)
        return 2 * n**3 / min(times) / 1e9

    if device == "cpu":
        for name, f in _cpu_matmuls(a, threads, with_tf=not smoke).items():  # a smoke skips TF's 3 s import
            # A library path that does not work here simply does not count.
            with contextlib.suppress(Exception):
                found[name] = best(f)
    elif frameworks.installed("torch"):
        import torch

        if torch.cuda.is_available():
            t = torch.from_numpy(a).cuda()
            for tf32 in (False, True):
                torch.backends.cuda.matmul.allow_tf32 = tf32
                found[f"torch-cuda-tf32-{'on' if tf32 else 'off'}"] = best(lambda: t @ t, torch.cuda.synchronize)
    if not found:
        raise RuntimeError(
            f"no way to measure the {device} matmul peak here (the GPU peak needs a CUDA build of torch)"
        )
    fp32 = {k: v for k, v in found.items() if "tf32-on" not in k}
    src = max(fp32, key=fp32.get)
    peak = {"n": n, "measured_gflops": {k: round(v, 1) for k, v in found.items()}, "gflops": fp32[src], "source": src}
    if "torch-cuda-tf32-on" in found:
        peak["tf32_gflops"] = found["torch-cuda-tf32-on"]
    return {"meta": peak, "results": []}


def combine_peaks(peaks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The best of several peak measurements (each a :func:`peak_job` meta), keeping every reading."""
    if not peaks:
        return None
    best = max(peaks, key=lambda p: p["gflops"])
    return {**best, "readings_gflops": [round(p["gflops"], 1) for p in peaks]}
