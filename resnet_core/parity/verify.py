"""Verify a port on the user's own weights: the same forward pass, layer by layer, before and after.

:func:`verify` reads SRC and runs it in its own framework (the reference), then runs DST --
or, without DST, SRC converted into each framework's native file and read back -- in every
target framework, on fixed inputs and, when given, the user's own inputs (a ``.npy`` batch or
a folder of images). Each run is compared probe by probe with
:func:`resnet_core.parity.compare.compare_probes` against ``settings.FORWARD_TOL``, so a
failing port names its first diverging layer. A Hugging Face folder is also run by
transformers itself, where installed (its logits against the reference).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import frameworks, porting, spec
from ..names import FRAMEWORKS
from ..weights import random_input
from . import compare
from .settings import FORWARD_TOL, INPUT_SEED

# The fixed inputs: two samples of random N(0, 1) images (as the parity matrix uses), at 2x the
# network's total stride so every stage sees more than one position (64x64 for an ImageNet stem).
FIXED_BATCH = 2
NATIVE = {"torch": ".pth", "keras": ".weights.h5", "paddle": ".pdparams"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class Verification:
    """Every comparison made: (target, inputs) -> probe-by-probe errors against the reference."""

    source: porting.Source
    reference: str
    comparisons: list[compare.Comparison] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.comparisons) and all(c.passed for c in self.comparisons)

    def report(self) -> str:
        """Per comparison: the error of each stage output, then agreement or the first diverging layer."""
        lines = []
        for c in self.comparisons:
            lines.append(c.message().splitlines()[0])
            for e in c.errors:
                if e.stage:
                    lines.append(
                        f"    {e.stage:8} {e.name:10} error {e.error:.3e}" + (f"  {e.problem}" if e.problem else "")
                    )
            if not c.passed:
                lines += c.message().splitlines()[1:]
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(
            f"{verdict}: {sum(c.passed for c in self.comparisons)} of {len(self.comparisons)} within {FORWARD_TOL:g}"
        )
        return "\n".join(lines)


def _name(path: str | os.PathLike) -> str:
    """A file's or folder's name (``hf-resnet18/`` -> ``hf-resnet18``)."""
    return os.path.basename(os.fspath(path).rstrip("/" + os.sep)) or os.fspath(path)


def fixed_inputs(cfg: spec.Config) -> np.ndarray:
    hw = 2 * cfg.min_input_size
    return random_input(cfg, FIXED_BATCH, hw, hw, seed=INPUT_SEED)


def load_inputs(path: str | os.PathLike, cfg: spec.Config) -> np.ndarray:
    """The user's inputs as an NCHW float32 batch: a ``.npy`` array (NCHW or NHWC) or a folder of images.

    Images are read with Pillow, converted to RGB (grayscale for one input channel) and
    scaled to [0, 1]; they must share one size (nothing is resized, so nothing is hidden).
    """
    path = os.fspath(path)
    c = cfg.in_channels
    if os.path.isdir(path):
        files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_SUFFIXES))
        if not files:
            raise ValueError(f"{path}: expected image files ({', '.join(IMAGE_SUFFIXES)}); found none")
        try:
            from PIL import Image
        except ImportError:
            raise ImportError("reading images needs Pillow (pip install pillow), or pass a .npy batch") from None
        arrays = []
        for f in files:
            with Image.open(os.path.join(path, f)) as im:
                arrays.append(np.asarray(im.convert("L" if c == 1 else "RGB"), dtype=np.float32) / 255.0)
        sizes = sorted({a.shape[:2] for a in arrays})
        if len(sizes) > 1:
            raise ValueError(f"{path}: the images must share one size (nothing is resized); found {sizes}")
        x = np.stack(arrays)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    elif path.endswith(".npy"):
        x = np.load(path, allow_pickle=False)
        if x.ndim == 3:
            x = x[None]
        if x.ndim == 4 and x.shape[1] != c and x.shape[3] == c:
            x = x.transpose(0, 3, 1, 2)  # NHWC, as Keras and image libraries hold it
        if x.ndim != 4 or x.shape[1] != c:
            raise ValueError(f"{path}: expected an NCHW or NHWC batch with {c} channels, received shape {x.shape}")
    else:
        raise ValueError(f"{path}: --inputs takes a .npy batch or a folder of images")
    if x.dtype.kind not in "fiu" or min(x.shape[2:]) < cfg.min_input_size:
        raise ValueError(
            f"{path}: expected numeric images of at least {cfg.min_input_size}x{cfg.min_input_size} "
            f"({cfg.model} {cfg.stem if hasattr(cfg, 'stem') else ''}); received {x.dtype} {x.shape}"
        )
    return np.ascontiguousarray(x, dtype=np.float32)


def _probes(fw: str, cfg: spec.Config, weights: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    mod = frameworks.get(fw)
    net = mod.build(cfg.model, initialize=False, **cfg.to_dict())
    mod.import_weights(net, weights)
    return mod.probe_outputs(net, x, training=False)


def _transformers_logits(folder: str, x: np.ndarray) -> np.ndarray | None:
    """Logits of ``ResNetForImageClassification.from_pretrained(folder)``, or None without transformers."""
    try:
        import torch
        from transformers import ResNetForImageClassification
    except ImportError:
        return None
    model = ResNetForImageClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).logits.numpy()


def _own_loader_check(read: porting.Source, ref: dict, x: np.ndarray, what: str) -> compare.Comparison | None:
    """transformers' own model on a Hugging Face classifier folder (a backbone has no logits to compare)."""
    path = read.path
    if read.raw.format.key != "hf" or read.scheme != "hf":
        return None
    logits = _transformers_logits(path, x)
    if logits is None:
        return None
    err = compare.probe_error("output", ref["output"], logits, "output")
    return compare.Comparison(f"{path} in transformers, {what}", [err], FORWARD_TOL, "layer")


def verify(
    src: str | os.PathLike,
    dst: str | os.PathLike | None = None,
    *,
    inputs: str | os.PathLike | None = None,
    fws: Sequence[str] | None = None,
    names: str | None = None,
    model: str | None = None,
    ema: bool = False,
) -> Verification:
    """Run SRC in its own framework and DST (or SRC's conversion) in each target framework; compare.

    Args:
        src: any file ``convert`` reads.
        dst: the port to check; without it, SRC is written into each framework's native format
            (in a temporary folder) and read back, so the writers are checked too.
        inputs: the user's own inputs besides the fixed ones (``.npy`` or a folder of images).
        fws: target frameworks (default: every installed one).
    """
    source = porting.read(src, names=names, model=model, ema=ema)
    cfg = source.config
    reference = source.framework if source.framework in FRAMEWORKS else "torch"
    targets = [f for f in (fws or frameworks.available()) if f in FRAMEWORKS]
    frameworks.load_all(sorted({reference, *targets}))  # the safe import order, once
    batches = [("fixed inputs", fixed_inputs(cfg))]
    if inputs is not None:
        batches.append((f"inputs {os.fspath(inputs)}", load_inputs(inputs, cfg)))
    result = Verification(source, reference)
    with tempfile.TemporaryDirectory(prefix="resnet-verify-") as tmp:
        ports: list[tuple[str, str]] = []  # (framework, file it runs)
        port = None
        if dst is not None:
            port = porting.read(dst, model=cfg.model)
            if port.config != cfg:
                raise ValueError(f"{dst} holds {port.config}, but {src} holds {cfg}: not a port of it")
            dst_fw = port.framework if port.framework in FRAMEWORKS else None
            ports = [(f, os.fspath(dst)) for f in ([dst_fw] if dst_fw else targets)]
        else:
            for f in targets:
                path = os.path.join(tmp, f"port{NATIVE[f]}")
                porting.write(path, cfg, source.weights, framework=source.framework)
                ports.append((f, path))
        for what, x in batches:
            ref = _probes(reference, cfg, source.weights, x)
            own = _own_loader_check(source, ref, x, what)
            if own is not None:
                result.comparisons.append(own)
            for f, path in ports:
                got = _probes(f, cfg, porting.read(path, model=cfg.model).weights, x)
                label = f"{reference} ({_name(src)}) -> {f} ({_name(path)}), {what}"
                result.comparisons.append(compare.compare_probes(cfg, ref, got, tol=FORWARD_TOL, label=label))
            if port is not None:
                own = _own_loader_check(port, ref, x, what)
                if own is not None:
                    result.comparisons.append(own)
    return result
