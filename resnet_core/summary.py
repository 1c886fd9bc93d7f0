"""``resnet-parity summary``: the models side by side in the installed frameworks."""

from __future__ import annotations

import argparse

from . import frameworks, spec
from .weights import random_input


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--framework", action="append", choices=["torch", "keras", "paddle"],
                   help="framework(s) to include (default: every installed one)")


def rows(fws: list[str]) -> list[dict]:
    """One row per (variant, framework): counts and output shape at the variant's reference size."""
    mods = frameworks.load_all(fws)
    out = []
    for model, kwargs, vid in spec.VARIANTS:
        cfg = spec.make_config(model, **kwargs)
        size = 224 if getattr(cfg, "stem", None) == "imagenet" else 32
        x = random_input(cfg, 1, size, size)
        want = spec.counts(cfg)
        for fw, mod in mods.items():
            net = mod.build(model, **kwargs)
            got = mod.count_params(net)
            probes = mod.probe_outputs(net, x)
            shapes = {p.stage: tuple(probes[p.name].shape[1:]) for p in spec.stages(cfg)}
            out.append({
                "variant": vid, "framework": fw, "input": f"{size}x{size}",
                "trainable": got.trainable, "bn_statistics": got.bn_statistics,
                "matches_spec": got == want and shapes == spec.stage_shapes(cfg, size, size),
                "output": tuple(probes["output"].shape), "stages": shapes,
            })
    return out


def format_table(rs: list[dict]) -> str:
    head = f"{'variant':30} {'framework':9} {'input':7} {'trainable':>11} {'BN stats':>9} {'output':10} {'last stage':13} spec"
    lines = [head, "-" * len(head)]
    for r in rs:
        last = [v for k, v in r["stages"].items() if k not in ("pool", "logits")][-1]
        lines.append(
            f"{r['variant']:30} {r['framework']:9} {r['input']:7} {r['trainable']:>11,} {r['bn_statistics']:>9,} "
            f"{str(r['output']):10} {'x'.join(map(str, last)):13} {'ok' if r['matches_spec'] else 'MISMATCH'}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    fws = args.framework or frameworks.available()
    if not fws:
        raise RuntimeError("no framework installed: pip install 'resnet-parity[all]'")
    rs = rows(fws)
    print(format_table(rs))
    return 0 if all(r["matches_spec"] for r in rs) else 1
