"""The structure level: the models side by side in the installed frameworks, checked against the spec.

``resnet-parity summary`` prints it; ``resnet-parity report`` starts with it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .. import frameworks, spec
from ..weights import random_input
from .settings import BATCH

Built = Callable[[str, str], Any]  # (framework, variant id) -> a model of that variant, only read here
Probe = Callable[[str, str], dict[str, np.ndarray]]  # (framework, variant id) -> probe outputs at the reference size


def rows(
    fws: list[str], variants: list[str] | None = None, built: Built | None = None, probe: Probe | None = None
) -> list[dict]:
    """One row per (variant, framework): counts and output shape at the variant's reference size.

    ``variants``: only these (default: every variant of the table). ``built`` and ``probe``: where the models
    and their probe outputs at the reference size come from (``report`` passes its
    :class:`~resnet_core.parity.matrix.Matrix`'s models and eval-level results, so nothing is built or run twice);
    by default each model is built here and run on a batch of the eval level's size. Implementations in worker
    processes (Keras on JAX and PyTorch) compute their rows in threads that wait on their sockets, so the workers
    build and run while this process does its own frameworks'.
    """
    mods = frameworks.load_all(fws)
    chosen = [v for v in spec.VARIANTS.values() if variants is None or v.id in variants]
    get = built or (lambda fw, variant: mods[fw].build(spec.variant(variant).model, **spec.variant(variant).kwargs))
    remote = [fw for fw in mods if fw in frameworks.WORKERS]
    with ThreadPoolExecutor(max_workers=max(len(remote), 1)) as pool:
        pending = {fw: pool.submit(lambda fw=fw: [_row(v, fw, mods[fw], get, probe) for v in chosen]) for fw in remote}
        done = {fw: [_row(v, fw, mods[fw], get, probe) for v in chosen] for fw in mods if fw not in pending}
        done.update({fw: f.result() for fw, f in pending.items()})
    return [done[fw][i] for i in range(len(chosen)) for fw in mods]


def _row(v: spec.Variant, fw: str, mod: Any, get: Built, probe: Probe | None) -> dict:
    cfg = v.config
    h, w = v.reference_size
    want = spec.counts(cfg)
    net = get(fw, v.id)  # one model for the counts and the run (by default each call builds one)
    got = mod.count_params(net)
    probes = probe(fw, v.id) if probe else mod.probe_outputs(net, random_input(cfg, BATCH, h, w))
    shapes = {p.stage: tuple(probes[p.name].shape[1:]) for p in spec.stages(cfg)}
    return {
        "variant": v.id,
        "framework": fw,
        "input": f"{h}x{w}",
        "trainable": got.trainable,
        "bn_statistics": got.bn_statistics,
        "matches_spec": got == want and shapes == spec.stage_shapes(cfg, h, w),
        "output": tuple(probes["output"].shape),
        "stages": shapes,
    }


def format_table(rs: list[dict]) -> str:
    head = (
        f"{'variant':30} {'framework':16} {'input':7} {'trainable':>11} {'BN stats':>9} "
        f"{'output':10} {'last stage':13} spec"
    )
    lines = [head, "-" * len(head)]
    for r in rs:
        last = [v for k, v in r["stages"].items() if k not in ("pool", "logits")][-1]
        lines.append(
            f"{r['variant']:30} {frameworks.label(r['framework']):16} {r['input']:7} "
            f"{r['trainable']:>11,} {r['bn_statistics']:>9,} "
            f"{r['output']!s:10} {'x'.join(map(str, last)):13} {'ok' if r['matches_spec'] else 'MISMATCH'}"
        )
    return "\n".join(lines)
