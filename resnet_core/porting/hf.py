"""Hugging Face transformers ResNet: the ``save_pretrained`` folder, read and written without transformers.

A folder holds ``config.json`` (a ``ResNetConfig``) and ``model.safetensors`` (or the older
``pytorch_model.bin``). transformers' ResNet with ``depths=[2, 2, 2, 2]``,
``hidden_sizes=[64, 128, 256, 512]`` and ``layer_type="basic"`` is torchvision's ResNet-18
module for module (7x7 stem with max-pool, projection shortcuts without bias); only the
names differ, and those are the ``hf``/``hf-backbone`` schemes of :mod:`.schemes`. The
config is checked here, so a ResNet-50 folder is refused by its config, not by 300 names.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import numpy as np

from .. import spec
from . import canonical, schemes
from .formats import HF_FOLDER, ConvertError

CONFIG = "config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# What a ResNet-18 states in its ResNetConfig; anything else is another network.
RESNET18 = {
    "model_type": "resnet",
    "depths": [2, 2, 2, 2],
    "hidden_sizes": [64, 128, 256, 512],
    "layer_type": "basic",
    "embedding_size": 64,
    "hidden_act": "relu",
    "downsample_in_first_stage": False,
}


def check_config(config: Any, path: str) -> None:
    """Refuse a ``config.json`` that is not ResNet-18's, saying which fields differ."""
    if not isinstance(config, dict):
        raise ConvertError(f"{path}: expected a JSON object in {CONFIG}, received {type(config).__name__}")
    wrong = {k: config[k] for k, v in RESNET18.items() if k in config and config[k] != v}
    if "model_type" not in config:
        wrong["model_type"] = None
    if wrong:
        got = ", ".join(f"{k}={v!r}" for k, v in wrong.items())
        want = ", ".join(f"{k}={RESNET18[k]!r}" for k in wrong)
        raise ConvertError(f"{path}: {CONFIG} describes another network ({got}); a ResNet-18 has {want}")


def open_folder(path: str) -> tuple[str, dict[str, Any]]:
    """A ``save_pretrained`` folder checked: ``(its weights file, its config.json)``.

    A folder without ``config.json`` is not a Hugging Face folder but a directory given where a
    file was meant: ``IsADirectoryError``, as for any other weights path that is a directory.
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such folder")
    cfg_path = os.path.join(path, CONFIG)
    if not os.path.isfile(cfg_path):
        raise IsADirectoryError(
            f"{path} is a directory; expected a weights file or a Hugging Face folder with {CONFIG} "
            f"(found {sorted(os.listdir(path))[:8]})"
        )
    try:
        with open(cfg_path, encoding="utf-8") as f:
            config = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConvertError(f"{cfg_path}: not valid JSON ({e})") from None
    check_config(config, cfg_path)
    weights = next((os.path.join(path, w) for w in WEIGHT_FILES if os.path.isfile(os.path.join(path, w))), None)
    if weights is None:
        raise ConvertError(
            f"{path}: expected {' or '.join(WEIGHT_FILES)} beside {CONFIG}; found {sorted(os.listdir(path))[:8]}"
        )
    return weights, config


def as_folder(raw, weights: str, config: dict[str, Any]):
    """The :class:`~.readers.RawFile` of a folder's weights file, as the folder: its format, labels and a note."""
    raw.format = HF_FOLDER
    labels = config.get("id2label") or {}
    raw.metadata = {"framework": "torch", "labels": json.dumps([labels[k] for k in sorted(labels, key=int)])}
    raw.notes.append(f"{os.path.basename(weights)} of a {'/'.join(config.get('architectures') or ['ResNet'])} folder")
    return raw


def hf_config(cfg: spec.Config, labels: list[str] | None = None) -> dict[str, Any]:
    """The ``config.json`` of ``cfg`` as ``ResNetForImageClassification``."""
    labels = labels if labels and len(labels) == cfg.num_classes else [f"LABEL_{i}" for i in range(cfg.num_classes)]
    return {
        "architectures": ["ResNetForImageClassification"],
        **RESNET18,
        "num_channels": cfg.in_channels,
        "downsample_in_bottleneck": False,
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
        "dtype": "float32",
    }


def check_writable(cfg: spec.Config) -> None:
    """transformers' ResNet has one stem (7x7, stride 2, max-pool) and bias-free shortcuts: refuse others."""
    if cfg.model != "resnet18" or cfg.stem != "imagenet" or cfg.shortcut_bias:
        raise ConvertError(
            f"a Hugging Face ResNet is a resnet18 with stem='imagenet' and shortcut_bias=False; "
            f"these weights are a {cfg.model} {json.dumps(cfg.to_dict())}"
        )


def hf_tensors(cfg: spec.Config, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``weights`` under ``ResNetForImageClassification``'s names, with BN's ``num_batches_tracked`` counters.

    transformers' BatchNorm2d layers hold the counter; without it ``from_pretrained`` reports
    20 missing keys (harmless, but "no missing keys" is the promise).
    """
    tensors: dict[str, np.ndarray] = {}
    for name, p in schemes.expected_names(schemes.get("hf"), cfg).items():
        tensors[name] = np.ascontiguousarray(weights[p.name], dtype=np.float32)
        if p.role == "bn.running_var":
            tensors[name.rsplit(".", 1)[0] + ".num_batches_tracked"] = np.zeros((), np.int64)
    return tensors


def _save_safetensors(path: str, tensors: dict[str, np.ndarray]) -> None:
    """With the safetensors library where installed (transformers depends on it), else with numpy.

    The numpy writer of :mod:`.canonical` stores a 0-d array as shape [1] (``np.ascontiguousarray``
    makes it 1-d), which transformers rejects as a size mismatch for the scalar counters; without
    the library the counters are left out (transformers then initialises them to 0, their value here).
    """
    try:
        from safetensors.numpy import save_file
    except ImportError:
        canonical.save_file(path, {k: v for k, v in tensors.items() if v.ndim}, {"format": "pt"})
        return
    save_file(tensors, path, metadata={"format": "pt"})


def write_folder(path: str, cfg: spec.Config, weights: dict[str, np.ndarray], *, labels=None, overwrite=False) -> None:
    """Write ``config.json`` + ``model.safetensors`` into the folder ``path``, all or nothing.

    Both files are written into a temporary folder beside ``path``, which then takes its
    place (an existing folder only with ``overwrite``), so a failure leaves nothing behind.
    """
    check_writable(cfg)
    path = os.fspath(path).rstrip("/" + os.sep) or "."
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConvertError(f"{path} is a file: a Hugging Face checkpoint is a folder")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise FileExistsError(f"{path} already exists and is not empty: refusing to overwrite it (use --force)")
    tensors = hf_tensors(cfg, weights)
    parent = os.path.dirname(os.path.abspath(path))
    tmp = tempfile.mkdtemp(prefix=".hf-", dir=parent)
    try:
        _save_safetensors(os.path.join(tmp, WEIGHT_FILES[0]), tensors)
        with open(os.path.join(tmp, CONFIG), "w", encoding="utf-8") as f:
            json.dump(hf_config(cfg, labels), f, indent=2)
        if os.path.isdir(path):
            for name in (CONFIG, WEIGHT_FILES[0]):
                os.replace(os.path.join(tmp, name), os.path.join(path, name))
            stale = os.path.join(path, WEIGHT_FILES[1])
            if os.path.exists(stale):  # would otherwise shadow nothing, but confuse a reader
                os.remove(stale)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
