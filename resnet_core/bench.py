"""``resnet-parity bench``: throughput of our models, against each framework's own and the machine's peak.

Every framework runs in its own subprocess (``python -m resnet_core.bench --worker JOB RESULT``):
thread counts that only environment variables set (OpenMP, oneDNN, OpenBLAS) are set before the
framework is imported, one framework's thread pools cannot slow another's, and the
TensorFlow-before-Paddle import hazard cannot arise. Inside a worker, all the variants of one
(model, mode) -- every setting and the framework's own ResNet-18 -- are warmed up first and then timed
in interleaved rounds, so a burst of load on a shared machine hits them alike.

Images/s is ``batch * iterations / seconds`` per round; the report gives the median over rounds and
the spread (min, max). FLOP counts come from :mod:`resnet_core.flops` (multiply-adds x 2, convs and
linear layers only; a training step counts 3x the forward).
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import flops, frameworks, spec
from .weights import random_input, random_weights

# --------------------------------------------------------------------------- what is measured


@dataclass(frozen=True)
class BenchModel:
    """One benchmarked network: builder options, image size and the default batch per device."""

    model: str
    kwargs: dict
    size: int
    cpu_batch: int
    gpu_batch: int

    @property
    def config(self) -> spec.Config:
        return spec.make_config(self.model, **self.kwargs)


BENCH_MODELS: dict[str, BenchModel] = {
    "resnet18-cifar": BenchModel("resnet18", {"stem": "cifar"}, 32, 32, 256),
    "resnet18-imagenet": BenchModel("resnet18", {"stem": "imagenet", "num_classes": 1000}, 224, 8, 64),
    # Logits out: the softmax costs nothing measurable and the training loss wants logits.
    "minimodel": BenchModel("minimodel", {"softmax": False}, 32, 32, 256),
}
MODES = ("eval", "train")  # eval-forward; training step = forward + loss + backward + SGD-momentum update


@dataclass(frozen=True)
class Setting:
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


# --------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", choices=list(BENCH_MODELS), help="model(s) to time (default: all)")
    p.add_argument("--framework", action="append", choices=list(ALL_FRAMEWORKS),
                   help="framework(s) to time (default: every installed one; keras-torch = Keras 3 on its torch "
                        "backend, added on GPU machines where TensorFlow sees no GPU)")
    p.add_argument("--setting", action="append", metavar="NAME",
                   help="only these settings (repeatable), e.g. eager; default: all, see the table's labels")
    p.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto",
                   help="auto (default): the CPU, plus the GPU where one is present; TF32 on and off on the GPU")
    p.add_argument("--batch-size", type=int, metavar="N", help="one batch size for every model (default: per model)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="intra-op CPU threads in every framework (default: the CPUs this process may use)")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations after the first call (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds; the median is reported (default 3)")
    p.add_argument("--iters", type=int, default=0,
                   help=f"iterations per timed round (default 0 = auto: enough for {MIN_ROUND_S} s, from the warm-up step)")
    p.add_argument("--smoke", action="store_true",
                   help="one iteration at batch 2, small peak matmul: checks that everything runs (CI)")
    p.add_argument("--no-conversion", action="store_true", help="skip timing the checkpoint conversion")
    p.add_argument("--suite", action="store_true", help="also time the full parity suite (pytest, minus bench tests)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds allowed to each framework's worker (default 1800)")
    p.add_argument("--out", default="bench-results", help="directory for bench.json and bench.md (default bench-results/)")


@dataclass
class Plan:
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
    missing = [f for f in fws if not frameworks.installed("torch" if f == "keras-torch" else f)
               or (f == "keras-torch" and not frameworks.installed("keras"))]
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
        frameworks=fws, settings=args.setting, devices=devices,
        threads=args.threads or len(os.sched_getaffinity(0)),
        warmup=args.warmup, repeats=args.repeats, iters=args.iters, batch=args.batch_size,
        smoke=args.smoke, timeout=args.timeout,
    )
    if args.smoke:  # one timed iteration of everything, at a tiny batch
        plan.warmup, plan.repeats, plan.iters, plan.batch = 0, 1, 1, args.batch_size or 2
    if args.device == "auto" and not gpu:
        plan.notes.append("no GPU on this machine: CPU only")
    return plan


def run(args: argparse.Namespace) -> int:
    plan = make_plan(args)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        raise OSError(f"--out {out_dir}: directory is not writable")
    started = time.perf_counter()
    report = {
        "command": "resnet-parity bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else "resnet-parity bench",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(plan.threads),
        "plan": {k: v for k, v in plan.__dict__.items() if k != "notes"},
        "notes": list(plan.notes),
        "flops": flop_table(plan.models),
        "peak": {}, "results": [], "workers": [], "conversion": None, "suite": None,
    }
    for device in plan.devices:
        peaks = [_worker(plan, {"kind": "peak", "device": device, "smoke": plan.smoke}, report)]
        for fw, tf32 in framework_jobs(plan, device):
            meta = _worker(plan, {"kind": "framework", "framework": fw, "device": device, "tf32": tf32}, report)
            if meta and meta.get("gpu_missing"):
                report["notes"].append(f"{fw}: {meta['gpu_missing']}")
                # Keras' TF backend often has no GPU build (tensorflow-cpu): Keras on its torch backend instead.
                if fw == "keras" and tf32 and "keras-torch" not in plan.frameworks and frameworks.installed("torch"):
                    for tf32_ in (True, False):
                        _worker(plan, {"kind": "framework", "framework": "keras-torch", "device": device, "tf32": tf32_}, report)
        if not plan.smoke:  # again at the end: on a shared machine the better reading is the closer to the true peak
            peaks.append(_worker(plan, {"kind": "peak", "device": device, "smoke": plan.smoke}, report))
        report["peak"][device] = combine_peaks([p for p in peaks if p])
    if not args.no_conversion:
        fws = [f for f in plan.frameworks if f in frameworks.FRAMEWORKS]
        report["conversion"] = _worker(plan, {"kind": "conversion", "frameworks": fws}, report)
    if args.suite:
        report["suite"] = time_suite()
    add_derived(report)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    md = markdown(report)
    write_atomic(out_dir / "bench.json", json.dumps(report, indent=1, default=str) + "\n")
    write_atomic(out_dir / "bench.md", md)
    print(md)
    print(f"bench: wrote {out_dir / 'bench.json'} and {out_dir / 'bench.md'} in {report['wall_s']} s", file=sys.stderr)
    crashed = [w for w in report["workers"] if w["rc"] != 0]
    return 1 if crashed else 0


def framework_jobs(plan: Plan, device: str) -> list[tuple[str, bool | None]]:
    """(framework, tf32) for each worker on ``device``: TF32 on and off on the GPU, not applicable on the CPU."""
    return [(f, None) for f in plan.frameworks] if device == "cpu" else [(f, t) for f in plan.frameworks for t in (True, False)]


# --------------------------------------------------------------------------- subprocess plumbing


def worker_env(threads: int, device: str, framework: str | None = None, tf32: bool | None = None) -> dict[str, str]:
    """Environment of a worker: thread counts and log levels that must be set before any import."""
    env = dict(os.environ)
    n = str(threads)
    env.update({
        "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
        "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "2", "FLAGS_print_model_stats": "0",
        "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1",
    })
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


def _worker(plan: Plan, job: dict, report: dict) -> dict | None:
    """Run one job in a fresh interpreter; its results are appended to ``report``; returns its meta."""
    job = {**job, "plan": {k: v for k, v in plan.__dict__.items() if k != "notes"}}
    tag = " ".join(str(job[k]) for k in ("kind", "framework", "device") if job.get(k)) + (
        f" tf32={'on' if job['tf32'] else 'off'}" if job.get("tf32") is not None else "")
    print(f"bench: {tag} ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="resnet-bench-") as tmp:
        job_path, result_path, log_path = (Path(tmp) / n for n in ("job.json", "result.json", "log.txt"))
        job_path.write_text(json.dumps(job))
        env = worker_env(plan.threads, job.get("device", "cpu"), job.get("framework"), job.get("tf32"))
        busy0, mine0 = cpu_busy_s(), _children_cpu_s()
        t0 = time.perf_counter()
        with open(log_path, "w") as log:
            try:
                rc = subprocess.run([sys.executable, "-m", "resnet_core.bench", "--worker", str(job_path), str(result_path)],
                                    env=env, stdout=log, stderr=subprocess.STDOUT, timeout=plan.timeout).returncode
            except subprocess.TimeoutExpired:
                rc = 124
        wall = time.perf_counter() - t0
        busy1, mine1 = cpu_busy_s(), _children_cpu_s()
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


def cpu_busy_s() -> float | None:
    """Seconds of CPU time spent by everything on the machine (from /proc/stat), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def _children_cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory, so no half-file is left."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def time_suite() -> dict:
    """Wall time of the full parity suite (every test but the bench smoke), in a subprocess."""
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "pytest", "parity_tests", "-q", "-p", "no:cacheprovider", "-m", "not bench"]
    print("bench: timing the parity suite ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    return {"command": " ".join(["python"] + cmd[1:]), "wall_s": round(wall, 1), "rc": p.returncode,
            "summary": lines[-1].strip("= ") if lines else p.stderr.strip()[-300:]}


# --------------------------------------------------------------------------- machine and FLOPs


def gpu_name() -> str:
    """The NVIDIA GPU's name, or '' where there is none (checked without importing any framework)."""
    if not shutil.which("nvidia-smi") and not Path("/dev/nvidia0").exists():
        return ""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "NVIDIA GPU (nvidia-smi unavailable)"
    return out.strip().splitlines()[0] if out.strip() else ""


def machine_info(threads: int) -> dict:
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
    return {"cpu": cpu, "cpu_flags": flags, "logical_cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "threads": threads, "gpu": gpu_name() or None, "platform": platform.platform(), "python": platform.python_version()}


def flop_table(models: list[str]) -> dict:
    out = {}
    for mid in models:
        bm = BENCH_MODELS[mid]
        cfg = bm.config
        out[mid] = {"input": f"{bm.size}x{bm.size}", "gmacs_per_image": flops.macs(cfg, bm.size, bm.size) / 1e9,
                    "eval_gflop_per_image": flops.forward_flops(cfg, bm.size, bm.size) / 1e9,
                    "train_gflop_per_image": flops.train_step_flops(cfg, bm.size, bm.size) / 1e9}
    return out


# --------------------------------------------------------------------------- framework adapters (in workers)


class _Adapter:
    """One framework inside a worker: builds models and returns a step function per setting."""

    name = ""

    def __init__(self, threads: int, device: str, tf32: bool | None) -> None:
        self.threads, self.device, self.tf32 = threads, device, tf32

    def meta(self) -> dict:
        return {}

    def gpu_missing(self) -> str:
        """'' when the framework sees the GPU, else why not."""
        return ""

    def ours(self, bm: BenchModel, weights: dict) -> Callable[[], Any]:
        raise NotImplementedError

    def reference(self, bm: BenchModel, weights: dict) -> Callable[[], Any]:
        raise Unavailable("no reference")

    def step(self, factory: Callable[[], Any], setting: str, mode: str, x: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
        raise NotImplementedError

    def to_numpy(self, out: Any) -> np.ndarray:
        return np.asarray(out)


class _TorchAdapter(_Adapter):
    name = "torch"

    def __init__(self, threads: int, device: str, tf32: bool | None) -> None:
        super().__init__(threads, device, tf32)
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set, or parallel work started
            pass
        self.torch = torch
        self.pkg = frameworks.get("torch")
        self.dev = torch.device("cuda" if device == "gpu" else "cpu")
        if device == "gpu" and torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
            torch.backends.cudnn.allow_tf32 = bool(tf32)

    def meta(self) -> dict:
        t = self.torch
        m = {"torch": t.__version__, "torch_threads": t.get_num_threads(), "torch_interop_threads": t.get_num_interop_threads()}
        if self.device == "gpu" and t.cuda.is_available():
            m.update(gpu=t.cuda.get_device_name(0), cuda=t.version.cuda, cudnn=t.backends.cudnn.version(),
                     allow_tf32_matmul=t.backends.cuda.matmul.allow_tf32, allow_tf32_cudnn=t.backends.cudnn.allow_tf32)
        return m

    def gpu_missing(self) -> str:
        return "" if self.torch.cuda.is_available() else f"torch {self.torch.__version__} sees no CUDA device"

    def sync(self) -> None:
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    def ours(self, bm: BenchModel, weights: dict) -> Callable[[], Any]:
        def make():
            m = self.pkg.build(bm.model, **bm.kwargs)
            self.pkg.import_weights(m, weights)
            return m.to(self.dev)
        return make

    def reference(self, bm: BenchModel, weights: dict) -> Callable[[], Any]:
        try:
            import torchvision
        except Exception as e:  # ImportError, or a RuntimeError when its build does not match torch's
            raise Unavailable(f"torchvision not installed/importable here ({type(e).__name__}: {str(e)[:120]})") from e
        state = self.ours(bm, weights)().state_dict()  # identical names to torchvision's

        def make():
            m = torchvision.models.resnet18(weights=None, num_classes=bm.kwargs["num_classes"])
            m.load_state_dict(state)
            return m.to(self.dev)
        return make

    def step(self, factory, setting, mode, x, y):
        torch = self.torch
        model = factory()
        xt = torch.from_numpy(x).to(self.dev)
        yt = torch.from_numpy(y).long().to(self.dev)
        if setting == "channels_last":
            model = model.to(memory_format=torch.channels_last)
            xt = xt.contiguous(memory_format=torch.channels_last)
        fwd = torch.compile(model) if setting == "compile" else model
        if mode == "eval":
            model.eval()

            def run():
                with torch.no_grad():
                    out = fwd(xt)
                self.sync()
                return out
            return run
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

        def train():
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(fwd(xt), yt)
            loss.backward()
            opt.step()
            self.sync()
        return train

    def to_numpy(self, out):
        return out.detach().float().cpu().numpy()


class _KerasAdapter(_Adapter):
    """Keras 3 on the backend named by KERAS_BACKEND (tensorflow, or torch for ``keras-torch``)."""

    name = "keras"

    def __init__(self, threads: int, device: str, tf32: bool | None) -> None:
        super().__init__(threads, device, tf32)
        self.pkg = frameworks.get("keras")
        import keras

        self.keras = keras
        self.backend = keras.backend.backend()
        if self.backend == "tensorflow":
            import tensorflow as tf

            self.tf = tf
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            if tf32 is not None:
                tf.config.experimental.enable_tensor_float_32_execution(bool(tf32))
        elif self.backend == "torch":
            import torch

            self.torch = torch
            torch.set_num_threads(threads)
            if tf32 is not None:
                torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(tf32)

    def meta(self) -> dict:
        m = {"keras": self.keras.__version__, "keras_backend": self.backend}
        if self.backend == "tensorflow":
            tf = self.tf
            m.update(tensorflow=tf.__version__, tf_intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
                     tf_inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
                     tf_gpus=[d.name for d in tf.config.list_physical_devices("GPU")])
        else:
            m.update(torch=self.torch.__version__, torch_threads=self.torch.get_num_threads())
        # What compile()'s default jit_compile="auto" resolves to here.
        try:
            probe = self.pkg.build("minimodel", softmax=False)
            probe.compile(optimizer="sgd", loss="mse")
            m["keras_default_jit_compile"] = bool(probe.jit_compile)
        except Exception as e:  # the timed builds report it again, per setting
            m["keras_default_jit_compile"] = f"unknown: {_one_line(e)}"
        return m

    def gpu_missing(self) -> str:
        if self.backend == "tensorflow":
            if self.tf.config.list_physical_devices("GPU"):
                return ""
            return f"TensorFlow {self.tf.__version__} sees no GPU (a CPU-only build such as tensorflow-cpu, or no CUDA)"
        return "" if self.torch.cuda.is_available() else "Keras' torch backend sees no CUDA device"

    def ours(self, bm, weights):
        def make():
            m = self.pkg.build(bm.model, **bm.kwargs)
            self.pkg.import_weights(m, weights)
            return m
        return make

    def reference(self, bm, weights):
        raise Unavailable(REFERENCES["keras"][1])

    def step(self, factory, setting, mode, x, y):
        keras = self.keras
        model = factory()
        model.compile(
            optimizer=keras.optimizers.SGD(LR, momentum=MOMENTUM),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            run_eagerly=setting == "eager",
            jit_compile=setting == "xla" if setting != "default" else "auto",
        )
        xt = keras.ops.convert_to_tensor(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))  # NHWC, on the default device
        yt = keras.ops.convert_to_tensor(y.astype(np.int32))
        if mode == "eval":
            return lambda: model.predict_on_batch(xt)  # returns numpy: the step has finished
        return lambda: model.train_on_batch(xt, yt)


class _PaddleAdapter(_Adapter):
    name = "paddle"

    def __init__(self, threads: int, device: str, tf32: bool | None) -> None:
        super().__init__(threads, device, tf32)
        self.pkg = frameworks.get("paddle")
        import paddle

        self.paddle = paddle
        set_threads = getattr(paddle.base.core, "set_num_threads", None)
        if set_threads is not None:  # the math library's threads; oneDNN follows OMP_NUM_THREADS (set in the env)
            set_threads(threads)
        self.gpu = device == "gpu" and paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
        paddle.set_device("gpu" if self.gpu else "cpu")
        self._tmp = tempfile.mkdtemp(prefix="resnet-bench-paddle-")  # exported models for the predictor
        atexit.register(shutil.rmtree, self._tmp, ignore_errors=True)

    def meta(self) -> dict:
        p = self.paddle
        m = {"paddle": p.__version__, "paddle_device": p.device.get_device(), "omp_threads": os.environ.get("OMP_NUM_THREADS")}
        if self.gpu:
            m["gpu"] = p.device.cuda.get_device_name(0)
        return m

    def gpu_missing(self) -> str:
        if self.gpu:
            return ""
        if not self.paddle.device.is_compiled_with_cuda():
            return f"paddlepaddle {self.paddle.__version__} is a CPU build (the GPU needs paddlepaddle-gpu)"
        return "Paddle sees no CUDA device"

    def sync(self) -> None:
        if self.gpu:
            self.paddle.device.synchronize()

    def ours(self, bm, weights):
        def make():
            m = self.pkg.build(bm.model, **bm.kwargs)
            self.pkg.import_weights(m, weights)
            return m
        return make

    def reference(self, bm, weights):
        from paddle.vision.models import resnet18

        state = self.ours(bm, weights)().state_dict()  # paddle.vision uses the same attribute names

        def make():
            m = resnet18(num_classes=bm.kwargs["num_classes"])  # pretrained=False: built locally, nothing downloaded
            missing, unexpected = m.set_state_dict(state)
            if missing or unexpected:
                raise RuntimeError(f"paddle.vision resnet18 names differ: missing {missing[:3]}, unexpected {unexpected[:3]}")
            return m
        return make

    def step(self, factory, setting, mode, x, y):
        paddle = self.paddle
        model = factory()
        if setting == "inference":
            return self._predictor(model, x)
        xt, yt = paddle.to_tensor(x), paddle.to_tensor(y.astype(np.int64))
        fwd = paddle.jit.to_static(model) if setting == "to_static" else model
        if mode == "eval":
            model.eval()

            def run():
                with paddle.no_grad():
                    out = fwd(xt)
                self.sync()
                return out
            return run
        model.train()
        opt = paddle.optimizer.Momentum(learning_rate=LR, momentum=MOMENTUM, parameters=model.parameters())

        def train():
            loss = paddle.nn.functional.cross_entropy(fwd(xt), yt)
            loss.backward()
            opt.step()
            opt.clear_grad()
            self.sync()
        return train

    def _predictor(self, model, x: np.ndarray) -> Callable[[], Any]:
        from paddle import inference

        paddle = self.paddle
        model.eval()
        prefix = os.path.join(tempfile.mkdtemp(dir=self._tmp), "model")
        paddle.jit.save(model, prefix, input_spec=[paddle.static.InputSpec([None, *x.shape[1:]], "float32", "x")])
        model_file = next(prefix + ext for ext in (".json", ".pdmodel") if os.path.exists(prefix + ext))
        cfg = inference.Config(model_file, prefix + ".pdiparams")
        if self.gpu:
            cfg.enable_use_gpu(256, 0)
        else:
            cfg.disable_gpu()
            (getattr(cfg, "enable_onednn", None) or cfg.enable_mkldnn)()
            cfg.set_cpu_math_library_num_threads(self.threads)
        cfg.switch_ir_optim(True)
        cfg.disable_glog_info()
        pred = inference.create_predictor(cfg)
        inp = pred.get_input_handle(pred.get_input_names()[0])
        out = pred.get_output_handle(pred.get_output_names()[0])

        def run():  # the predictor's own API: host in, host out
            inp.copy_from_cpu(x)
            pred.run()
            return out.copy_to_cpu()
        return run

    def to_numpy(self, out):
        return out if isinstance(out, np.ndarray) else out.numpy()


ADAPTERS: dict[str, type[_Adapter]] = {"torch": _TorchAdapter, "keras": _KerasAdapter, "keras-torch": _KerasAdapter,
                                        "paddle": _PaddleAdapter}


# --------------------------------------------------------------------------- worker jobs


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: " + " ".join(str(e).split())[:400]


def _stats(samples: list[float]) -> dict:
    med = statistics.median(samples)
    return {"median": med, "min": min(samples), "max": max(samples), "spread_pct": 100 * (max(samples) - min(samples)) / med,
            "samples": samples}


def _rel_diff(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a - ref| / max(1, max |ref|): the suite's scaled max-abs error."""
    return float(np.max(np.abs(a.astype(np.float64) - ref)) / max(1.0, float(np.max(np.abs(ref)))))


def framework_job(job: dict, save: Callable[[dict], None]) -> dict:
    """Time every (model, mode, implementation, setting) of one framework on one device."""
    plan, fw, device = job["plan"], job["framework"], job["device"]
    ad = ADAPTERS[fw](plan["threads"], device, job.get("tf32"))
    meta = {"framework": fw, **ad.meta()}
    out = {"meta": meta, "results": []}
    if device == "gpu" and ad.gpu_missing():
        meta["gpu_missing"] = ad.gpu_missing()
        save(out)
        return out
    settings = [s for s in SETTINGS[fw] if not plan["settings"] or s.name in plan["settings"]]
    for mid in plan["models"]:
        bm = BENCH_MODELS[mid]
        cfg = bm.config
        batch = plan["batch"] or (bm.gpu_batch if device == "gpu" else bm.cpu_batch)
        weights = random_weights(cfg, seed=0)
        x = random_input(cfg, batch, bm.size, bm.size, seed=1)
        y = np.random.default_rng(2).integers(0, cfg.num_classes, batch)
        impls: list[tuple[str, Callable]] = [("ours", ad.ours(bm, weights))]
        if mid == REFERENCE_MODEL and REFERENCES[fw][0]:
            try:
                impls.append((REFERENCES[fw][0], ad.reference(bm, weights)))
            except Unavailable as e:  # said once, not once per setting
                out["results"].append({"framework": fw, "device": device, "tf32": job.get("tf32"), "model": mid,
                                       "batch": batch, "mode": "-", "impl": REFERENCES[fw][0], "setting": "-",
                                       "setting_label": "-", "status": "unavailable", "error": str(e)})
        for mode in MODES:
            base = {"framework": fw, "backend": meta.get("keras_backend"), "device": device, "tf32": job.get("tf32"),
                    "model": mid, "batch": batch, "input": f"{bm.size}x{bm.size}", "mode": mode}
            timed, outputs = [], {}
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
                        rec.update(status="failed", error=_one_line(e))
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
                rec["images_per_s"] = _stats(rec.pop("samples"))
                ref_out = outputs.get(("ours", EAGER))
                got = outputs.get((rec["impl"], rec["setting"]))
                if ref_out is not None and got is not None:
                    rec["max_rel_diff_vs_ours_eager"] = _rel_diff(got, ref_out)
            del timed, outputs
            gc.collect()
            save(out)
    return out


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


def peak_job(job: dict) -> dict:
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
            try:
                found[name] = best(f)
            except Exception:  # a library path that does not work here simply does not count
                pass
    elif frameworks.installed("torch"):
        import torch

        if torch.cuda.is_available():
            t = torch.from_numpy(a).cuda()
            for tf32 in (False, True):
                torch.backends.cuda.matmul.allow_tf32 = tf32
                found[f"torch-cuda-tf32-{'on' if tf32 else 'off'}"] = best(lambda: t @ t, torch.cuda.synchronize)
    if not found:
        raise RuntimeError(f"no way to measure the {device} matmul peak here (the GPU peak needs a CUDA build of torch)")
    fp32 = {k: v for k, v in found.items() if "tf32-on" not in k}
    src = max(fp32, key=fp32.get)
    peak = {"n": n, "measured_gflops": {k: round(v, 1) for k, v in found.items()}, "gflops": fp32[src], "source": src}
    if "torch-cuda-tf32-on" in found:
        peak["tf32_gflops"] = found["torch-cuda-tf32-on"]
    return {"meta": peak, "results": []}


def combine_peaks(peaks: list[dict]) -> dict | None:
    """The best of several peak measurements (each a :func:`peak_job` meta), keeping every reading."""
    if not peaks:
        return None
    best = max(peaks, key=lambda p: p["gflops"])
    return {**best, "readings_gflops": [round(p["gflops"], 1) for p in peaks]}


# Each framework's native weights file, as `resnet-parity convert` names it by extension.
NATIVE_SUFFIX = {"torch": ".pt", "keras": ".weights.h5", "paddle": ".pdparams"}


def conversion_job(job: dict) -> dict:
    """Seconds to port the 11.7 M-parameter ResNet-18 (imagenet stem) between every ordered pair of frameworks.

    Two figures per direction: in memory (``export_weights`` + ``import_weights``), and file to file with
    :func:`resnet_core.convert.convert` (read, validate, build the target model, save natively). Framework
    imports happen once, before any timing.
    """
    fws = job["frameworks"]
    t0 = time.perf_counter()
    mods = frameworks.load_all(fws)
    import_s = time.perf_counter() - t0
    bm = BENCH_MODELS[REFERENCE_MODEL]
    cfg = bm.config
    weights = random_weights(cfg, seed=0)
    models = {f: m.build(bm.model, **bm.kwargs) for f, m in mods.items()}
    for f, m in mods.items():
        m.import_weights(models[f], weights)
    reps = 1 if job["plan"]["smoke"] else 3
    pairs = [(a, b) for a in mods for b in mods if a != b]

    def median_s(f: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            f(*args, **kwargs)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    def port(a: str, b: str) -> None:
        mods[b].import_weights(models[b], mods[a].export_weights(models[a]))

    memory = {f"{a}->{b}": median_s(port, a, b) for a, b in pairs}
    files: dict[str, float] | str
    try:
        from . import convert

        with tempfile.TemporaryDirectory(prefix="resnet-bench-convert-") as tmp:
            src = {f: os.path.join(tmp, "source" + NATIVE_SUFFIX[f]) for f in mods}
            for f, path in src.items():
                convert.write(path, cfg, weights, framework=f)
            files = {f"{a}->{b}": median_s(convert.convert, src[a], os.path.join(tmp, "out" + NATIVE_SUFFIX[b]), overwrite=True)
                     for a, b in pairs}
            sizes = {f: os.path.getsize(p) for f, p in src.items()}
    except Exception as e:  # the file API is another module's: report, do not crash the bench
        files, sizes = f"file conversion not timed: {_one_line(e)}", {}
    c = spec.counts(cfg)
    return {"meta": {"model": REFERENCE_MODEL, "parameters": c.trainable, "bn_statistics": c.bn_statistics,
                     "framework_import_s": round(import_s, 2), "memory_s": memory, "file_s": files,
                     "file_bytes": sizes, "formats": {f: NATIVE_SUFFIX[f] for f in mods}}, "results": []}


def worker_main(job_path: str, result_path: str) -> int:
    job = json.loads(Path(job_path).read_text())

    def save(res: dict) -> None:
        write_atomic(Path(result_path), json.dumps(res, default=str))

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


# --------------------------------------------------------------------------- report


def add_derived(report: dict) -> None:
    """GFLOP/s from the analytic counts, share of the measured peak, speed relative to eager."""
    fl = report["flops"]
    for r in report["results"]:
        ips = r.get("images_per_s")
        if not ips:
            continue
        per_image = fl[r["model"]]["eval_gflop_per_image" if r["mode"] == "eval" else "train_gflop_per_image"]
        r["gflops"] = ips["median"] * per_image
        peak = (report["peak"].get(r["device"]) or {})
        peak_gflops = peak.get("tf32_gflops") if r["device"] == "gpu" and r.get("tf32") else peak.get("gflops")
        if peak_gflops:
            r["pct_of_peak"] = 100 * r["gflops"] / peak_gflops
    def key(r: dict) -> tuple:
        return r["framework"], r["device"], r.get("tf32"), r["model"], r["mode"]

    eager = {key(r): r["images_per_s"]["median"] for r in report["results"]
             if r.get("images_per_s") and r["impl"] == "ours" and r["setting"] == EAGER}
    for r in report["results"]:
        if r.get("images_per_s") and key(r) in eager:
            r["speedup_vs_ours_eager"] = r["images_per_s"]["median"] / eager[key(r)]
    ours = {(*key(r), r["setting"]): r for r in report["results"] if r["impl"] == "ours" and r.get("images_per_s")}
    for r in report["results"]:
        mine = ours.get((*key(r), r["setting"]))
        if r["impl"] != "ours" and r.get("images_per_s") and mine:
            # Paired by round: the two ran back to back in every round, so a burst of load cancels out.
            pairs = zip(mine["images_per_s"]["samples"], r["images_per_s"]["samples"], strict=True)
            r["ours_over_reference"] = statistics.median(a / b for a, b in pairs)


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _fmt_ips(r: dict) -> str:
    s = r.get("images_per_s")
    if not s:
        return r.get("status", "?")
    return f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})"


def _cell(r: dict | None) -> str:
    if r is None:
        return "-"
    return f"{r['images_per_s']['median']:.1f}" if r.get("images_per_s") else r.get("status", "?")


def _device_label(r: dict) -> str:
    if r["device"] == "cpu":
        return "cpu"
    return f"gpu, TF32 {'on' if r.get('tf32') else 'off'}"


def markdown(rep: dict) -> str:
    m, plan = rep["machine"], rep["plan"]
    res = rep["results"]
    L = ["# resnet-parity bench", ""]
    L.append(f"- Machine: {m['cpu']} ({m['cpu_flags']}), {m['usable_cpus']} usable of {m['logical_cpus']} logical CPUs; "
             f"{m['threads']} intra-op threads in every framework (inter-op 1); GPU: {m['gpu'] or 'none'}")
    vers: dict[str, str] = {}
    for w in rep["workers"]:
        for k in ("torch", "tensorflow", "keras", "paddle", "cuda", "cudnn"):
            if (w.get("meta") or {}).get(k):
                vers[k] = str(w["meta"][k])
    L.append(f"- Versions: Python {m['python']}, numpy {np.__version__}, " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    per_round = plan["iters"] or f"as many iterations as fill {MIN_ROUND_S} s (at least 1)"
    L.append(f"- Timing: first call (compilation included) and {plan['warmup']} warm-up iteration(s) untimed, then "
             f"{plan['repeats']} interleaved round(s) of {per_round}; images/s = median (min-max) over rounds"
             + (" -- SMOKE RUN, not a measurement" if plan["smoke"] else ""))
    L.append("- FLOPs: multiply-adds x 2 of convolutions and linear layers, from the spec (BN, ReLU, pooling, adds "
             "not counted); training step = 3 x forward")
    for dev, pk in rep["peak"].items():
        if pk:
            extra = f", TF32 {pk['tf32_gflops']:.0f}" if pk.get("tf32_gflops") else ""
            L.append(f"- float32 matmul peak ({dev}): **{pk['gflops']:.1f} GFLOP/s**{extra} (best square matmul, "
                     f"{pk['n']}x{pk['n']}, by `{pk['source']}`; best of the readings at the start and the end of the run "
                     f"{pk['readings_gflops']}; "
                     "that reading: " + ", ".join(f"{k} {v:.1f}" for k, v in pk["measured_gflops"].items()) + ")")
    for n in rep["notes"]:
        L.append(f"- Note: {n}")
    busy = {w["job"]: w["other_processes_cpus"] for w in rep["workers"] if w.get("other_processes_cpus", 0) >= 0.2}
    if busy:
        L.append(f"- **Warning: other processes used CPU during the run** (average CPUs taken, per worker: {busy}); "
                 "figures from those workers are depressed and noisy")
    L.append("")
    L.append("| model | input | GMACs/image | eval GFLOP/image | train-step GFLOP/image |")
    L.append("|---|---|---|---|---|")
    for mid, f in rep["flops"].items():
        L.append(f"| {mid} | {f['input']} | {f['gmacs_per_image']:.3f} | {f['eval_gflop_per_image']:.3f} "
                 f"| {f['train_gflop_per_image']:.3f} |")

    ours = [r for r in res if r["impl"] == "ours"]
    fws = list(dict.fromkeys(r["framework"] for r in ours))
    for dev in dict.fromkeys(_device_label(r) for r in ours):
        rows = [r for r in ours if _device_label(r) == dev]
        L += ["", f"## Cross-framework: the same network, images/s (median), {dev}", ""]
        L.append("| model | batch | mode | " + " | ".join(f"{f} eager | {f} best" for f in fws) + " |")
        L.append("|---|---|---|" + "---|---|" * len(fws))
        for mid, mode in dict.fromkeys((r["model"], r["mode"]) for r in rows):
            cells = []
            batch = next(r["batch"] for r in rows if r["model"] == mid)
            for f in fws:
                group = [r for r in rows if r["framework"] == f and r["model"] == mid and r["mode"] == mode]
                eager = next((r for r in group if r["setting"] == EAGER), None)
                ok = [r for r in group if r.get("images_per_s")]
                best = max(ok, key=lambda r: r["images_per_s"]["median"]) if ok else None
                cells += [_cell(eager), f"{_cell(best)} ({best['setting']})" if best else "-"]
            L.append(f"| {mid} | {batch} | {mode} | " + " | ".join(cells) + " |")

    L += ["", "## Our ResNet-18 against the framework's own (imagenet stem, 1000 classes, same weights)", ""]
    L.append("| framework | device | setting | mode | ours images/s | theirs images/s | ours / theirs (median of paired rounds) "
             "| outputs max rel. diff |")
    L.append("|---|---|---|---|---|---|---|---|")
    refs = [r for r in res if r["impl"] != "ours"]
    for r in refs:
        mine = next((o for o in ours if (o["framework"], o["device"], o.get("tf32"), o["model"], o["mode"], o["setting"])
                     == (r["framework"], r["device"], r.get("tf32"), r["model"], r["mode"], r["setting"])), None)
        if "ours_over_reference" in r:
            ratio = f"{r['ours_over_reference']:.2f}"
        else:
            ratio = _md(r.get("error", r.get("status", "-")))[:90]
        diff = r.get("max_rel_diff_vs_ours_eager")
        L.append(f"| {r['framework']} ({r['impl']}) | {_device_label(r)} | {r['setting']} | {r['mode']} | "
                 f"{_fmt_ips(mine) if mine else '-'} | {_fmt_ips(r)} | {ratio} | {'' if diff is None else f'{diff:.1e}'} |")
    seen = {r["framework"] for r in refs}
    for f in fws:
        if f not in seen:
            L.append(f"| {f} | - | - | - | - | - | {REFERENCES[f][1] or 'reference not timed (model not selected)'} | |")

    L += ["", "## Every measurement", ""]
    L.append("| device | framework | model | batch | mode | setting | images/s median (min-max) | spread % | GFLOP/s | % of peak "
             "| vs eager | first call s | outputs max rel. diff |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in ours:
        head = f"| {_device_label(r)} | {r['framework']} | {r['model']} | {r['batch']} | {r['mode']} | {r['setting']} | "
        ips = r.get("images_per_s")
        if not ips:
            L.append(head + f"{r.get('status')}: {_md(r.get('error', ''))[:160]} | | | | | | |")
            continue
        pct = f"{r['pct_of_peak']:.1f}" if "pct_of_peak" in r else "-"
        diff = r.get("max_rel_diff_vs_ours_eager")
        diff_s = "" if diff is None else f"{diff:.1e}"
        vs = f"{r['speedup_vs_ours_eager']:.2f}x" if "speedup_vs_ours_eager" in r else "-"
        L.append(head + f"{_fmt_ips(r)} | {ips['spread_pct']:.0f} | {r['gflops']:.1f} | {pct} | "
                 f"{vs} | {r['first_call_s']:.1f} | {diff_s} |")
    labels = {(r["framework"], r["setting"]): r["setting_label"] for r in res if r["setting"] != "-"}
    L += ["", "Settings: " + "; ".join(f"{f} `{s}` = {lab}" for (f, s), lab in labels.items()) + "."]

    conv = rep.get("conversion")
    if conv:
        L += ["", (f"## Checkpoint conversion: {conv['model']}, {conv['parameters']:,} parameters + "
                   f"{conv['bn_statistics']:,} BN statistics"), "",
              "Median seconds per direction. In memory: `export_weights(source model)` + `import_weights(target model)` "
              "(validated, all-or-nothing). File to file: `resnet_core.convert.convert(src, dst)`, native formats "
              + ", ".join(f"{f} `{s}`" for f, s in conv["formats"].items())
              + " (read, validate, build the target model, save it natively). "
              f"Framework imports ({conv['framework_import_s']} s) are not included.", ""]
        files = conv["file_s"]
        L += ["| direction | in memory s | file to file s |", "|---|---|---|"]
        L += [f"| {d} | {s:.3f} | {files[d]:.3f} |" if isinstance(files, dict) else f"| {d} | {s:.3f} | - |"
              for d, s in conv["memory_s"].items()]
        if not isinstance(files, dict):
            L += ["", files]
    suite = rep.get("suite")
    if suite:
        L += ["", f"## Parity suite: {suite['wall_s']} s (`{suite['command']}`, exit {suite['rc']}: {suite['summary']})"]
    bad = [w for w in rep["workers"] if w["rc"] != 0]
    if bad:
        L += ["", "## Workers that failed", ""] + [f"- {w['job']}: {_md(w['error'])[:400]}" for w in bad]
    L += ["", f"Total bench time: {rep.get('wall_s', '?')} s; command: `{rep['command']}`; {rep['date']}", ""]
    return "\n".join(L)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        sys.exit(worker_main(sys.argv[2], sys.argv[3]))
    sys.exit("usage: python -m resnet_core.bench --worker JOB.json RESULT.json (run `resnet-parity bench` instead)")
