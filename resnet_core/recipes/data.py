"""The recipes' data pipeline, in numpy: the data, every epoch's order and every augmentation decision.

Everything random is drawn once here from one seed, so PyTorch, Keras and Paddle train on identical
batches (float32 NCHW arrays; each framework only casts and, for Keras, transposes).

The data are scikit-learn's bundled digits (``sklearn/datasets/data/digits.csv.gz``: the UCI "Optical
Recognition of Handwritten Digits" test set, 1797 grayscale 8x8 images, 10 classes, CC BY 4.0; scikit-learn
itself is BSD-3). No image data set small enough ships inside a package installed here, and nothing may be
downloaded at run time. The file is read straight from the installed package (``import sklearn`` is not
needed, so neither is SciPy), resized bilinearly to the recipe's input size and replicated to 3 channels
for the CIFAR recipes. Install it with ``pip install 'resnet-parity[recipes]'``.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import Recipe

SPLIT_SEED = 0  # which 297 of the 1797 digits are held out; fixed, so every run holds out the same images
HELD_OUT = 297


def digits_path() -> Path:
    """Where the installed scikit-learn keeps ``digits.csv.gz`` (found without importing scikit-learn)."""
    found = importlib.util.find_spec("sklearn")
    if found is None or not found.submodule_search_locations:
        raise ImportError(
            "the recipes train on scikit-learn's bundled digits, and scikit-learn is not installed: "
            "pip install 'resnet-parity[recipes]'"
        )
    path = Path(next(iter(found.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"scikit-learn is installed but {path} is missing: expected its bundled digits file")
    return path


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 digits as float32 images (N, 8, 8) scaled to [0, 1] (the file holds 0..16) and int64 labels."""
    with gzip.open(digits_path(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    if table.shape != (1797, 65):
        raise ValueError(f"{digits_path()}: expected 1797 rows of 64 pixels + label, received shape {table.shape}")
    return (table[:, :64].reshape(-1, 8, 8) / 16.0).astype(np.float32), table[:, 64].astype(np.int64)


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear interpolation weights, half-pixel centres (PIL/torchvision's convention)."""
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), lo), 1 - (src - lo))
    np.add.at(m, (np.arange(n_out), hi), src - lo)
    return m


def resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (N, h, w) images to (N, H, W)."""
    rh, rw = _resize_matrix(images.shape[1], size[0]), _resize_matrix(images.shape[2], size[1])
    return np.einsum("Hh,nhw,Ww->nHW", rh, images.astype(np.float64), rw).astype(np.float32)


@dataclass(frozen=True)
class Dataset:
    """Training and held-out images (NCHW float32 in [0, 1], before normalisation) and labels, with the
    normalisation statistics of the training set."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    mean: np.ndarray  # broadcastable to (C, H, W)
    std: np.ndarray

    def normalise(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)


def dataset(recipe: Recipe) -> Dataset:
    """The digits at the recipe's size and channels, split, with the recipe's normalisation statistics.

    ``per_channel``: mean and std per channel over the training set (pytorch-cifar's Normalize, whose
    constants are CIFAR-10's; these are the digits'). ``featurewise``: seed 001's scalar mean and per-pixel
    std; pixels that are constant over the training set (the digits' corners) are divided by 1, not 0.
    ``none``: d2l's ToTensor only.
    """
    images, labels = load_digits()
    x = resize(images, recipe.input_size)[:, None]
    x = np.repeat(x, recipe.channels, axis=1)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    test, train = order[:HELD_OUT], order[HELD_OUT:]
    tx = x[train].astype(np.float64)
    c = recipe.channels
    if recipe.normalisation == "none":
        mean, std = np.zeros((c, 1, 1)), np.ones((c, 1, 1))
    elif recipe.normalisation == "per_channel":
        mean, std = tx.mean(axis=(0, 2, 3))[:, None, None], tx.std(axis=(0, 2, 3))[:, None, None]
    elif recipe.normalisation == "featurewise":
        mean = np.full((c, 1, 1), tx.mean())
        std = (tx - tx.mean()).std(axis=0)
        std = np.where(std > 0, std, 1.0)
    else:
        raise ValueError(f"unknown normalisation {recipe.normalisation!r}: expected none, per_channel or featurewise")
    return Dataset(x[train], labels[train], x[test], labels[test], mean, std)


def _affine(img: np.ndarray, angle_deg: float, ty: float, tx: float) -> np.ndarray:
    """Rotate about the centre and shift a (C, H, W) image; bilinear, edges extended (Keras' fill_mode='nearest',
    order=1 of ImageDataGenerator.apply_affine_transform)."""
    _, h, w = img.shape
    a = math.radians(angle_deg)
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    cy, cx = (h - 1) / 2, (w - 1) / 2
    # output pixel -> source pixel: inverse rotation about the centre, minus the shift
    sy = math.cos(a) * (yy - cy) - math.sin(a) * (xx - cx) + cy - ty
    sx = math.sin(a) * (yy - cy) + math.cos(a) * (xx - cx) + cx - tx
    sy, sx = np.clip(sy, 0, h - 1), np.clip(sx, 0, w - 1)
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = sy - y0, sx - x0
    return (
        img[:, y0, x0] * (1 - fy) * (1 - fx)
        + img[:, y0, x1] * (1 - fy) * fx
        + img[:, y1, x0] * fy * (1 - fx)
        + img[:, y1, x1] * fy * fx
    ).astype(np.float32)


def augment(recipe: Recipe, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply the recipe's augmentation to a batch; every decision is drawn from ``rng`` here, in this order."""
    aug = recipe.augmentation
    if not aug:
        return x
    n, _, h, w = x.shape
    out = np.empty_like(x)
    pad = int(aug.get("crop_padding", 0))
    offsets = rng.integers(0, 2 * pad + 1, size=(n, 2)) if pad else None
    rot = float(aug.get("rotation", 0.0))
    angles = rng.uniform(-rot, rot, size=n) if rot else np.zeros(n)
    shift = float(aug.get("shift", 0.0))
    shifts = rng.uniform(-shift, shift, size=(n, 2)) * (h, w) if shift else np.zeros((n, 2))
    flips = rng.random(n) < 0.5 if aug.get("hflip") else np.zeros(n, bool)
    for i in range(n):
        img = x[i]
        if offsets is not None:  # torchvision RandomCrop(size, padding): zero padding, then a crop
            padded = np.pad(img, ((0, 0), (pad, pad), (pad, pad)))
            img = padded[:, offsets[i, 0] : offsets[i, 0] + h, offsets[i, 1] : offsets[i, 1] + w]
        if rot or shift:
            img = _affine(img, angles[i], shifts[i, 0], shifts[i, 1])
        out[i] = img[:, :, ::-1] if flips[i] else img
    return out


def batches(
    recipe: Recipe, data: Dataset, steps: int, *, batch: int | None = None, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``steps`` training batches (normalised NCHW float32, int64 labels), identical for every framework.

    Each epoch is a fresh permutation of the training set; batches are taken from the stream of
    epochs back to back, so every batch is full. Seed 001 (Keras) augments the normalised images, as its
    ImageDataGenerator did; the torchvision recipes augment the [0, 1] images and normalise afterwards.
    """
    size = recipe.batch if batch is None else batch
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, received {steps!r}")
    if not 1 <= size <= len(data.train_x):
        raise ValueError(f"batch must be in [1, {len(data.train_x)}] (the training set), received {size}")
    rng = np.random.default_rng(seed)
    stream = np.empty(0, dtype=np.int64)
    for _ in range(steps):
        while len(stream) < size:
            stream = np.concatenate([stream, rng.permutation(len(data.train_x))])
        idx, stream = stream[:size], stream[size:]
        x = data.train_x[idx]
        if recipe.normalisation == "featurewise":
            x = augment(recipe, data.normalise(x), rng)
        else:
            x = data.normalise(augment(recipe, x, rng))
        yield np.ascontiguousarray(x), data.train_y[idx]
