"""Running the benchmark: one subprocess per job, and the jobs themselves.

Every framework runs in its own interpreter (``python -m resnet_core.bench --worker JOB RESULT``):
thread counts that only environment variables set (OpenMP, oneDNN, OpenBLAS) are set before the
framework is imported, one framework's thread pools cannot slow another's, and the
TensorFlow-before-Paddle import hazard cannot arise. The parent (:func:`collect`) imports no
framework; a worker finds its framework's :class:`~resnet_core.bench.plan.BenchAdapter` by importing
``resnet_<framework>.bench`` (:func:`load_adapter`).
"""

from __future__ import annotations

import datetime
import gc
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from resnet_core import frameworks, runtime, spec
from resnet_core.atomic import write_text_atomic
from resnet_core.weights import random_input, random_weights

from .machine import children_cpu_s, combine_peaks, cpu_busy_s, machine_info, peak_job
from .plan import (
    BENCH_MODELS,
    EAGER,
    MIN_ROUND_S,
    MODES,
    REFERENCE_MODEL,
    REFERENCES,
    SETTINGS,
    BenchAdapter,
    Plan,
    Unavailable,
    bench_config,
    builder_kwargs,
    default_batch,
    flop_table,
    input_label,
    one_line,
)

# --------------------------------------------------------------------------- the parent process


def collect(plan: Plan, *, command: str, conversion: bool = True, suite: bool = False) -> dict[str, Any]:
    """Run every worker of ``plan`` and gather their results into the report (before :func:`add_derived`)."""
    report: dict[str, Any] = {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(plan.threads),
        "plan": plan.for_worker(),
        "notes": list(plan.notes),
        "flops": flop_table(plan.models),
        "peak": {},
        "results": [],
        "workers": [],
        "conversion": None,
        "suite": None,
    }
    for device in plan.devices:
        peaks = [run_worker(plan, {"kind": "peak", "device": device, "smoke": plan.smoke}, report)]
        for fw, tf32 in framework_jobs(plan, device):
            meta = run_worker(plan, {"kind": "framework", "framework": fw, "device": device, "tf32": tf32}, report)
            if meta and meta.get("gpu_missing"):
                report["notes"].append(f"{fw}: {meta['gpu_missing']}")
                # Keras' TF backend often has no GPU build (tensorflow-cpu): Keras on its torch backend instead.
                if fw == "keras" and tf32 and "keras-torch" not in plan.frameworks and frameworks.installed("torch"):
                    for tf32_ in (True, False):
                        job = {"kind": "framework", "framework": "keras-torch", "device": device, "tf32": tf32_}
                        run_worker(plan, job, report)
        if not plan.smoke:  # again at the end: on a shared machine the better reading is the closer to the true peak
            peaks.append(run_worker(plan, {"kind": "peak", "device": device, "smoke": plan.smoke}, report))
        report["peak"][device] = combine_peaks([p for p in peaks if p])
    if conversion:
        fws = [f for f in plan.frameworks if f in frameworks.FRAMEWORKS]
        report["conversion"] = run_worker(plan, {"kind": "conversion", "frameworks": fws}, report)
    if suite:
        report["suite"] = time_suite()
    return report


def framework_jobs(plan: Plan, device: str) -> list[tuple[str, bool | None]]:
    """(framework, tf32) for each worker on ``device``: TF32 on and off on the GPU, not applicable on the CPU."""
    if device == "cpu":
        return [(f, None) for f in plan.frameworks]
    return [(f, t) for f in plan.frameworks for t in (True, False)]


def worker_env(threads: int, device: str, framework: str | None = None, tf32: bool | None = None) -> dict[str, str]:
    """Environment of a worker: thread counts and log levels that must be set before any import."""
    env = dict(os.environ)
    n = str(threads)
    env.update(
        {
            "OMP_NUM_THREADS": n,
            "MKL_NUM_THREADS": n,
            "OPENBLAS_NUM_THREADS": n,
            "TF_NUM_INTRAOP_THREADS": n,
            "TF_NUM_INTEROP_THREADS": "1",
            # the project's environment (resnet_core.runtime, the one place), as run.sh exports it
            **{name: value for name, (value, _why) in runtime.ENVIRONMENT.items()},
            "FLAGS_print_model_stats": "0",
            "PYTHONWARNINGS": "ignore",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # every framework then runs on the CPU, whatever it could see
    if framework == "keras-torch":
        env["KERAS_BACKEND"] = "torch"
    elif framework == "keras":
        env["KERAS_BACKEND"] = "tensorflow"
    if tf32 is False:
        env["NVIDIA_TF32_OVERRIDE"] = "0"  # cuBLAS/cuDNN refuse TF32 whatever a framework asks
    if tf32 is not None:
        flag = "1" if tf32 else "0"
        env["FLAGS_allow_tf32_cublas"] = env["FLAGS_allow_tf32_cudnn"] = flag
    return env


def run_worker(plan: Plan, job: dict[str, Any], report: dict[str, Any]) -> dict[str, Any] | None:
    """Run one job in a fresh interpreter; its results are appended to ``report``; returns its meta."""
    job = {**job, "plan": plan.for_worker()}
    tag = " ".join(str(job[k]) for k in ("kind", "framework", "device") if job.get(k)) + (
        f" tf32={'on' if job['tf32'] else 'off'}" if job.get("tf32") is not None else ""
    )
    print(f"bench: {tag} ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="resnet-bench-") as tmp:
        job_path, result_path, log_path = (Path(tmp) / n for n in ("job.json", "result.json", "log.txt"))
        job_path.write_text(json.dumps(job))
        env = worker_env(plan.threads, job.get("device", "cpu"), job.get("framework"), job.get("tf32"))
        busy0, mine0 = cpu_busy_s(), children_cpu_s()
        t0 = time.perf_counter()
        with open(log_path, "w") as log:
            cmd = [sys.executable, "-m", "resnet_core.bench", "--worker", str(job_path), str(result_path)]
            try:
                rc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=plan.timeout).returncode
            except subprocess.TimeoutExpired:
                rc = 124
        wall = time.perf_counter() - t0
        busy1, mine1 = cpu_busy_s(), children_cpu_s()
        result = json.loads(result_path.read_text()) if result_path.exists() else {}
        tail = log_path.read_text(errors="replace")[-1500:]
    entry = {"job": tag, "rc": rc, "wall_s": round(wall, 1), "meta": result.get("meta")}
    if busy0 is not None and busy1 is not None:
        # CPU time that other processes took while this worker ran, in CPUs: > 0 means contended figures.
        entry["other_processes_cpus"] = round(max(0.0, (busy1 - busy0) - (mine1 - mine0)) / wall, 2)
    if rc != 0:
        entry["error"] = ("timed out" if rc == 124 else f"exit status {rc}") + ": " + " ".join(tail.split()[-60:])
        print(f"bench: {tag} failed ({entry['error'][:300]})", file=sys.stderr)
    report["workers"].append(entry)
    for r in result.get("results", []):
        report["results"].append(r)
    print(f"bench: {tag} done in {wall:.0f} s", file=sys.stderr, flush=True)
    return result.get("meta")


def time_suite() -> dict[str, Any]:
    """Wall time of the full parity suite (every test but the bench smoke), in a subprocess."""
    root = Path(__file__).resolve().parents[2]  # resnet_core/bench/runner.py -> the repository
    cmd = [sys.executable, "-m", "pytest", "parity_tests", "-q", "-p", "no:cacheprovider", "-m", "not bench"]
    print("bench: timing the parity suite ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    return {
        "command": " ".join(["python", *cmd[1:]]),
        "wall_s": round(wall, 1),
        "rc": p.returncode,
        "summary": lines[-1].strip("= ") if lines else p.stderr.strip()[-300:],
    }


# --------------------------------------------------------------------------- inside a worker


def load_adapter(framework: str, threads: int, device: str, tf32: bool | None) -> BenchAdapter:
    """The adapter of a bench framework, from ``resnet_<fw>.bench`` (imported here, in the worker, only).

    ``keras-torch`` is ``resnet_keras.bench`` with ``backend="torch"`` (the worker's environment has
    already set ``KERAS_BACKEND``; the adapter checks that Keras loaded that backend).
    """
    package, _, backend = framework.partition("-")
    module = importlib.import_module(f"resnet_{package}.bench")
    kwargs = {"backend": backend} if backend else {}
    adapter = module.bench_adapter(threads, device, tf32, **kwargs)
    if not isinstance(adapter, BenchAdapter):  # a missing method fails here, not halfway through a long run
        raise TypeError(f"resnet_{package}.bench.bench_adapter returned {type(adapter).__name__}, not a BenchAdapter")
    return adapter


def stats(samples: list[float]) -> dict[str, Any]:
    """Median, range and spread of per-round images/s; the samples are kept for paired ratios."""
    med = statistics.median(samples)
    spread = 100 * (max(samples) - min(samples)) / med
    return {"median": med, "min": min(samples), "max": max(samples), "spread_pct": spread, "samples": samples}


def rel_diff(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a - ref| / max(1, max |ref|): the suite's scaled max-abs error."""
    return float(np.max(np.abs(a.astype(np.float64) - ref)) / max(1.0, float(np.max(np.abs(ref)))))


def framework_job(job: dict[str, Any], save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Time every (model, mode, implementation, setting) of one framework on one device.

    All the variants of one (model, mode) -- every setting and the framework's own ResNet-18 -- are
    warmed up first and then timed in interleaved rounds, so a burst of load on a shared machine hits
    them alike. Results are saved after each (model, mode), so a crash later keeps what was measured.
    """
    plan, fw, device = job["plan"], job["framework"], job["device"]
    ad = load_adapter(fw, plan["threads"], device, job.get("tf32"))
    meta = {"framework": fw, **ad.meta()}
    out: dict[str, Any] = {"meta": meta, "results": []}
    if device == "gpu" and ad.gpu_missing():
        meta["gpu_missing"] = ad.gpu_missing()
        save(out)
        return out
    settings = [s for s in SETTINGS[fw] if not plan["settings"] or s.name in plan["settings"]]
    for mid in plan["models"]:
        v = BENCH_MODELS[mid]
        cfg = bench_config(v)
        kwargs = builder_kwargs(v)
        h, w = v.reference_size
        batch = plan["batch"] or default_batch(v, device)
        weights = random_weights(cfg, seed=0)
        x = random_input(cfg, batch, h, w, seed=1)
        y = np.random.default_rng(2).integers(0, cfg.num_classes, batch)
        impls: list[tuple[str, Callable[[], Any]]] = [("ours", ad.ours(v.model, kwargs, weights))]
        if mid == REFERENCE_MODEL and REFERENCES[fw][0]:
            try:
                impls.append((REFERENCES[fw][0], ad.reference(v.model, kwargs, weights)))
            except Unavailable as e:  # said once, not once per setting
                out["results"].append(
                    {
                        "framework": fw,
                        "device": device,
                        "tf32": job.get("tf32"),
                        "model": mid,
                        "batch": batch,
                        "mode": "-",
                        "impl": REFERENCES[fw][0],
                        "setting": "-",
                        "setting_label": "-",
                        "status": "unavailable",
                        "error": str(e),
                    }
                )
        for mode in MODES:
            base = {
                "framework": fw,
                "backend": meta.get("keras_backend"),
                "device": device,
                "tf32": job.get("tf32"),
                "model": mid,
                "batch": batch,
                "input": input_label(v),
                "mode": mode,
            }
            timed: list[tuple[dict[str, Any], Callable[[], Any]]] = []
            outputs: dict[tuple[str, str], np.ndarray] = {}
            for impl, factory in impls:
                for s in settings:
                    if mode not in s.modes:
                        continue
                    rec = {**base, "impl": impl, "setting": s.name, "setting_label": s.label}
                    out["results"].append(rec)
                    try:
                        t0 = time.perf_counter()
                        step = ad.step(factory, s.name, mode, x, y)
                        t1 = time.perf_counter()
                        first = step()
                        rec["build_s"], rec["first_call_s"] = round(t1 - t0, 3), round(time.perf_counter() - t1, 3)
                        if mode == "eval":
                            outputs[(impl, s.name)] = ad.to_numpy(first)
                        warm = rec["first_call_s"]
                        for _ in range(max(plan["warmup"], 0 if plan["iters"] else 1)):
                            t0 = time.perf_counter()
                            step()
                            warm = time.perf_counter() - t0
                    except Exception as e:  # a setting that does not work here is a result, not a crash
                        rec.update(status="failed", error=one_line(e))
                        continue
                    iters = plan["iters"] or max(1, math.ceil(MIN_ROUND_S / max(warm, 1e-6)))
                    rec.update(status="ok", iters_per_round=iters, samples=[])
                    timed.append((rec, step))
            for _ in range(plan["repeats"]):  # interleaved rounds: load bursts hit every variant alike
                for rec, step in timed:
                    t0 = time.perf_counter()
                    for _ in range(rec["iters_per_round"]):
                        step()
                    rec["samples"].append(batch * rec["iters_per_round"] / (time.perf_counter() - t0))
            for rec, _ in timed:
                rec["images_per_s"] = stats(rec.pop("samples"))
                ref_out = outputs.get(("ours", EAGER))
                got = outputs.get((rec["impl"], rec["setting"]))
                if ref_out is not None and got is not None:
                    rec["max_rel_diff_vs_ours_eager"] = rel_diff(got, ref_out)
            del timed, outputs
            gc.collect()
            save(out)
    return out


# Each framework's native weights file, as `resnet-parity convert` names it by extension.
NATIVE_SUFFIX = {"torch": ".pt", "keras": ".weights.h5", "paddle": ".pdparams"}


def conversion_job(job: dict[str, Any]) -> dict[str, Any]:
    """Seconds to port the 11.7 M-parameter ResNet-18 (imagenet stem) between every ordered pair of frameworks.

    Two figures per direction: in memory (``export_weights`` + ``import_weights``), and file to file with
    :func:`resnet_core.porting.convert` (read, validate, build the target model, save natively). Framework
    imports happen once, before any timing.
    """
    fws = job["frameworks"]
    t0 = time.perf_counter()
    mods = frameworks.load_all(fws)
    import_s = time.perf_counter() - t0
    v = BENCH_MODELS[REFERENCE_MODEL]
    cfg = bench_config(v)
    kwargs = builder_kwargs(v)
    weights = random_weights(cfg, seed=0)
    models = {f: m.build(v.model, initialize=False, **kwargs) for f, m in mods.items()}
    for f, m in mods.items():
        m.import_weights(models[f], weights)
    reps = 1 if job["plan"]["smoke"] else 3
    pairs = [(a, b) for a in mods for b in mods if a != b]

    def median_s(f: Callable[..., Any], *args: Any, **kw: Any) -> float:
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            f(*args, **kw)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    def port(a: str, b: str) -> None:
        mods[b].import_weights(models[b], mods[a].export_weights(models[a]))

    memory = {f"{a}->{b}": median_s(port, a, b) for a, b in pairs}
    files: dict[str, float] | str
    try:
        from resnet_core import porting

        with tempfile.TemporaryDirectory(prefix="resnet-bench-convert-") as tmp:
            src = {f: os.path.join(tmp, "source" + NATIVE_SUFFIX[f]) for f in mods}
            for f, path in src.items():
                porting.write(path, cfg, weights, framework=f)
            files = {
                f"{a}->{b}": median_s(
                    porting.convert, src[a], os.path.join(tmp, "out" + NATIVE_SUFFIX[b]), overwrite=True
                )
                for a, b in pairs
            }
            sizes = {f: os.path.getsize(p) for f, p in src.items()}
    except Exception as e:  # the file API is another module's: report, do not crash the bench
        files, sizes = f"file conversion not timed: {one_line(e)}", {}
    c = spec.counts(cfg)
    meta = {
        "model": REFERENCE_MODEL,
        "parameters": c.trainable,
        "bn_statistics": c.bn_statistics,
        "framework_import_s": round(import_s, 2),
        "memory_s": memory,
        "file_s": files,
        "file_bytes": sizes,
        "formats": {f: NATIVE_SUFFIX[f] for f in mods},
    }
    return {"meta": meta, "results": []}


def worker_main(job_path: str, result_path: str) -> int:
    """Entry point of a worker process: run the job in ``job_path``, write its result to ``result_path``."""
    job = json.loads(Path(job_path).read_text())

    def save(res: dict[str, Any]) -> None:  # atomic: the parent never reads half a result after a crash
        write_text_atomic(result_path, json.dumps(res, default=str))

    kind = job["kind"]
    if kind == "framework":
        save(framework_job(job, save))
    elif kind == "peak":
        save(peak_job(job))
    elif kind == "conversion":
        save(conversion_job(job))
    else:
        raise ValueError(f"unknown worker job kind {kind!r}")
    return 0
