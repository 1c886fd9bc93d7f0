"""``resnet-parity bench``: throughput of our models, against each framework's own and the machine's peak.

Every framework runs in its own subprocess (``python -m resnet_core.bench --worker JOB RESULT``):
thread counts that only environment variables set (OpenMP, oneDNN, OpenBLAS) are set before the
framework is imported, one framework's thread pools cannot slow another's, and the
TensorFlow-before-Paddle import hazard cannot arise. Inside a worker, all the variants of one
(model, mode) -- every setting and the framework's own ResNet-18 -- are warmed up first and then timed
in interleaved rounds, so a burst of load on a shared machine hits them alike.

Images/s is ``batch * iterations / seconds`` per round; the report gives the median over rounds and
the spread (min, max). FLOP counts come from :mod:`resnet_core.spec.flops` (multiply-adds x 2, convs and
linear layers only; a training step counts 3x the forward).

The package, by job (none imports a framework; a worker imports ``resnet_<framework>.bench``, the
framework's :class:`BenchAdapter`):

* :mod:`.plan` -- what is measured, as data: models, settings, references, the run's :class:`Plan`,
  the adapter interface;
* :mod:`.runner` -- the worker subprocesses and the jobs they run, timing statistics;
* :mod:`.machine` -- CPU/GPU description, other processes' CPU time, the float32 matmul peak;
* :mod:`.render` -- derived figures and ``bench.md``.

The command line (options, writing the files) is :mod:`resnet_core.cli.bench`.
"""

from __future__ import annotations

from .machine import combine_peaks, gpu_name, machine_info, peak_job
from .plan import (
    ALL_FRAMEWORKS,
    BENCH_MODELS,
    EAGER,
    MODES,
    REFERENCE_MODEL,
    REFERENCES,
    SETTINGS,
    BenchAdapter,
    Plan,
    Setting,
    Unavailable,
    flop_table,
    make_plan,
)
from .render import add_derived, markdown
from .runner import collect, framework_job, framework_jobs, load_adapter, worker_env, worker_main

__all__ = [
    "ALL_FRAMEWORKS",
    "BENCH_MODELS",
    "EAGER",
    "MODES",
    "REFERENCES",
    "REFERENCE_MODEL",
    "SETTINGS",
    "BenchAdapter",
    "Plan",
    "Setting",
    "Unavailable",
    "add_derived",
    "collect",
    "combine_peaks",
    "flop_table",
    "framework_job",
    "framework_jobs",
    "gpu_name",
    "load_adapter",
    "machine_info",
    "make_plan",
    "markdown",
    "peak_job",
    "worker_env",
    "worker_main",
]
