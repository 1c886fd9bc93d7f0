"""The report: figures derived from the measurements, and the Markdown that ``bench.md`` holds.

Pure functions of the report dict (no framework, no timing), so the table layout can be changed and
checked without running a benchmark. Every figure that is not a direct measurement (GFLOP/s, % of
peak, speed-ups, ours/theirs) is computed here, once, from what the workers recorded.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from .plan import EAGER, MIN_ROUND_S, REFERENCES


def add_derived(report: dict[str, Any]) -> None:
    """GFLOP/s from the analytic counts, share of the measured peak, speed relative to eager."""
    fl = report["flops"]
    for r in report["results"]:
        ips = r.get("images_per_s")
        if not ips:
            continue
        per_image = fl[r["model"]]["eval_gflop_per_image" if r["mode"] == "eval" else "train_gflop_per_image"]
        r["gflops"] = ips["median"] * per_image
        peak = report["peak"].get(r["device"]) or {}
        peak_gflops = peak.get("tf32_gflops") if r["device"] == "gpu" and r.get("tf32") else peak.get("gflops")
        if peak_gflops:
            r["pct_of_peak"] = 100 * r["gflops"] / peak_gflops

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return r["framework"], r["device"], r.get("tf32"), r["model"], r["mode"]

    eager = {
        key(r): r["images_per_s"]["median"]
        for r in report["results"]
        if r.get("images_per_s") and r["impl"] == "ours" and r["setting"] == EAGER
    }
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


def _fmt_ips(r: dict[str, Any]) -> str:
    s = r.get("images_per_s")
    if not s:
        return r.get("status", "?")
    return f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})"


def _cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    return f"{r['images_per_s']['median']:.1f}" if r.get("images_per_s") else r.get("status", "?")


def _device_label(r: dict[str, Any]) -> str:
    if r["device"] == "cpu":
        return "cpu"
    return f"gpu, TF32 {'on' if r.get('tf32') else 'off'}"


Row = dict[str, Any]


def markdown(rep: dict[str, Any]) -> str:
    """``bench.md``: the run's conditions, then the tables, from the most summarized to every measurement."""
    res = rep["results"]
    ours = [r for r in res if r["impl"] == "ours"]
    fws = list(dict.fromkeys(r["framework"] for r in ours))
    L = _header(rep)
    L += _cross_framework(ours, fws)
    L += _references(res, ours, fws)
    L += _measurements(res, ours)
    L += _conversion(rep.get("conversion"))
    suite = rep.get("suite")
    if suite:
        L += [
            "",
            f"## Parity suite: {suite['wall_s']} s (`{suite['command']}`, exit {suite['rc']}: {suite['summary']})",
        ]
    bad = [w for w in rep["workers"] if w["rc"] != 0]
    if bad:
        L += ["", "## Workers that failed", ""] + [f"- {w['job']}: {_md(w['error'])[:400]}" for w in bad]
    L += ["", f"Total bench time: {rep.get('wall_s', '?')} s; command: `{rep['command']}`; {rep['date']}", ""]
    return "\n".join(L)


def _header(rep: dict[str, Any]) -> list[str]:
    """Machine, versions, timing method, FLOP convention, peak, notes and load warnings, and the FLOP table:
    everything a reader needs to judge the figures below."""
    m, plan = rep["machine"], rep["plan"]
    L = ["# resnet-parity bench", ""]
    L.append(
        f"- Machine: {m['cpu']} ({m['cpu_flags']}), {m['usable_cpus']} usable of {m['logical_cpus']} logical CPUs; "
        f"{m['threads']} intra-op threads in every framework (inter-op 1); GPU: {m['gpu'] or 'none'}"
    )
    vers: dict[str, str] = {}
    for w in rep["workers"]:
        for k in ("torch", "tensorflow", "keras", "paddle", "cuda", "cudnn"):
            if (w.get("meta") or {}).get(k):
                vers[k] = str(w["meta"][k])
    L.append(
        f"- Versions: Python {m['python']}, numpy {np.__version__}, " + ", ".join(f"{k} {v}" for k, v in vers.items())
    )
    per_round = plan["iters"] or f"as many iterations as fill {MIN_ROUND_S} s (at least 1)"
    L.append(
        f"- Timing: first call (compilation included) and {plan['warmup']} warm-up iteration(s) untimed, then "
        f"{plan['repeats']} interleaved round(s) of {per_round}; images/s = median (min-max) over rounds"
        + (" -- SMOKE RUN, not a measurement" if plan["smoke"] else "")
    )
    L.append(
        "- FLOPs: multiply-adds x 2 of convolutions and linear layers, from the spec (BN, ReLU, pooling, adds "
        "not counted); training step = 3 x forward"
    )
    for dev, pk in rep["peak"].items():
        if pk:
            extra = f", TF32 {pk['tf32_gflops']:.0f}" if pk.get("tf32_gflops") else ""
            L.append(
                f"- float32 matmul peak ({dev}): **{pk['gflops']:.1f} GFLOP/s**{extra} (best square matmul, "
                f"{pk['n']}x{pk['n']}, by `{pk['source']}`; best of the readings at the start and the end of the run "
                f"{pk['readings_gflops']}; "
                "that reading: " + ", ".join(f"{k} {v:.1f}" for k, v in pk["measured_gflops"].items()) + ")"
            )
    for n in rep["notes"]:
        L.append(f"- Note: {n}")
    busy = {w["job"]: w["other_processes_cpus"] for w in rep["workers"] if w.get("other_processes_cpus", 0) >= 0.2}
    if busy:
        L.append(
            f"- **Warning: other processes used CPU during the run** (average CPUs taken, per worker: {busy}); "
            "figures from those workers are depressed and noisy"
        )
    L.append("")
    L.append("| model | input | GMACs/image | eval GFLOP/image | train-step GFLOP/image |")
    L.append("|---|---|---|---|---|")
    for mid, f in rep["flops"].items():
        L.append(
            f"| {mid} | {f['input']} | {f['gmacs_per_image']:.3f} | {f['eval_gflop_per_image']:.3f} "
            f"| {f['train_gflop_per_image']:.3f} |"
        )
    return L


def _cross_framework(ours: list[Row], fws: list[str]) -> list[str]:
    """Per device: eager and best setting of each framework side by side, one row per (model, mode)."""
    L: list[str] = []
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
    return L


def _references(res: list[Row], ours: list[Row], fws: list[str]) -> list[str]:
    """Our ResNet-18 next to the framework's own, same setting and mode; a framework without one says why."""
    L = ["", "## Our ResNet-18 against the framework's own (imagenet stem, 1000 classes, same weights)", ""]
    L.append(
        "| framework | device | setting | mode | ours images/s | theirs images/s "
        "| ours / theirs (median of paired rounds) | outputs max rel. diff |"
    )
    L.append("|---|---|---|---|---|---|---|---|")
    refs = [r for r in res if r["impl"] != "ours"]
    for r in refs:
        mine = next(
            (
                o
                for o in ours
                if (o["framework"], o["device"], o.get("tf32"), o["model"], o["mode"], o["setting"])
                == (r["framework"], r["device"], r.get("tf32"), r["model"], r["mode"], r["setting"])
            ),
            None,
        )
        if "ours_over_reference" in r:
            ratio = f"{r['ours_over_reference']:.2f}"
        else:
            ratio = _md(r.get("error", r.get("status", "-")))[:90]
        diff = r.get("max_rel_diff_vs_ours_eager")
        L.append(
            f"| {r['framework']} ({r['impl']}) | {_device_label(r)} | {r['setting']} | {r['mode']} | "
            f"{_fmt_ips(mine) if mine else '-'} | {_fmt_ips(r)} | {ratio} | {'' if diff is None else f'{diff:.1e}'} |"
        )
    seen = {r["framework"] for r in refs}
    for f in fws:
        if f not in seen:
            L.append(
                f"| {f} | - | - | - | - | - | {REFERENCES[f][1] or 'reference not timed (model not selected)'} | |"
            )
    return L


def _measurements(res: list[Row], ours: list[Row]) -> list[str]:
    """One row per timed (or failed) setting of our models, and what each setting name means."""
    L = ["", "## Every measurement", ""]
    L.append(
        "| device | framework | model | batch | mode | setting | images/s median (min-max) | spread % | GFLOP/s "
        "| % of peak | vs eager | first call s | outputs max rel. diff |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in ours:
        head = (
            f"| {_device_label(r)} | {r['framework']} | {r['model']} | {r['batch']} | {r['mode']} | {r['setting']} | "
        )
        ips = r.get("images_per_s")
        if not ips:
            L.append(head + f"{r.get('status')}: {_md(r.get('error', ''))[:160]} | | | | | | |")
            continue
        pct = f"{r['pct_of_peak']:.1f}" if "pct_of_peak" in r else "-"
        diff = r.get("max_rel_diff_vs_ours_eager")
        diff_s = "" if diff is None else f"{diff:.1e}"
        vs = f"{r['speedup_vs_ours_eager']:.2f}x" if "speedup_vs_ours_eager" in r else "-"
        L.append(
            head + f"{_fmt_ips(r)} | {ips['spread_pct']:.0f} | {r['gflops']:.1f} | {pct} | "
            f"{vs} | {r['first_call_s']:.1f} | {diff_s} |"
        )
    labels = {(r["framework"], r["setting"]): r["setting_label"] for r in res if r["setting"] != "-"}
    L += ["", "Settings: " + "; ".join(f"{f} `{s}` = {lab}" for (f, s), lab in labels.items()) + "."]
    return L


def _conversion(conv: dict[str, Any] | None) -> list[str]:
    """The checkpoint-conversion timings, in memory and file to file, per direction (none when not timed)."""
    if not conv:
        return []
    L = [
        "",
        (
            f"## Checkpoint conversion: {conv['model']}, {conv['parameters']:,} parameters + "
            f"{conv['bn_statistics']:,} BN statistics"
        ),
        "",
        "Median seconds per direction. In memory: `export_weights(source model)` + `import_weights(target model)` "
        "(validated, all-or-nothing). File to file: `resnet_core.porting.convert(src, dst)`, native formats "
        + ", ".join(f"{f} `{s}`" for f, s in conv["formats"].items())
        + " (read, validate, build the target model, save it natively). "
        f"Framework imports ({conv['framework_import_s']} s) are not included.",
        "",
    ]
    files = conv["file_s"]
    L += ["| direction | in memory s | file to file s |", "|---|---|---|"]
    L += [
        f"| {d} | {s:.3f} | {files[d]:.3f} |" if isinstance(files, dict) else f"| {d} | {s:.3f} | - |"
        for d, s in conv["memory_s"].items()
    ]
    if not isinstance(files, dict):
        L += ["", files]
    return L
