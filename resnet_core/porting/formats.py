"""The weight-file formats, named by extension: which exist, who writes them, which are read only.

One table, so the reader, the writer, each framework's ``save`` and the CLI's help
text cannot disagree about what ``.pth`` or ``.h5`` means.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass


class ConvertError(ValueError):
    """A file cannot be read or written as asked; the message says what was expected and received."""


@dataclass(frozen=True)
class Format:
    key: str
    suffixes: tuple[str, ...]
    framework: str | None  # the framework that writes it; None: canonical, no framework
    label: str
    writable: bool = True


FORMATS: tuple[Format, ...] = (
    Format("safetensors", (".safetensors",), None, "canonical safetensors checkpoint"),
    # .bin: Hugging Face's pytorch_model.bin, a torch.save'd state dict like any other.
    Format("torch", (".pt", ".pth", ".bin"), "torch", "PyTorch state dict"),
    # What training scripts save: timm's train.py (.pth.tar), Lightning (.ckpt); read only.
    Format("torch-checkpoint", (".pth.tar", ".ckpt", ".tar"), "torch", "PyTorch training checkpoint", False),
    Format("keras-weights", (".weights.h5",), "keras", "Keras weights file"),
    # keras-hub's ResNet-18 weights: a .weights.h5 too (read as "keras-weights", the scheme tells them
    # apart), so written only when named by --to; keras_hub.py has the arguments its model is built with.
    Format("keras-hub", (".weights.h5",), "keras", "keras-hub ResNetImageClassifier weights file"),
    Format("keras-hub-backbone", (".weights.h5",), "keras", "keras-hub ResNetBackbone weights file"),
    Format("keras", (".keras",), "keras", "Keras model archive"),
    Format("paddle", (".pdparams",), "paddle", "Paddle state dict"),
    # What the Keras tutorial's own code writes (model.save("cifar10model.h5")).
    Format("keras-h5", (".h5", ".hdf5"), "keras", "legacy Keras HDF5 model", writable=False),
    # paddle.jit.save's parameters, named from the program file beside it (.json or .pdmodel): read only.
    Format("paddle-inference", (".pdiparams",), "paddle", "Paddle inference export (paddle.jit.save)", False),
    # A save_pretrained folder: config.json + model.safetensors (or pytorch_model.bin). Named by a
    # folder, not an extension (see :func:`format_of`).
    Format("hf", ("/",), "torch", "Hugging Face transformers folder (config.json + model.safetensors)"),
)

HF_FOLDER = FORMATS[-1]


def suffix_list(writable: bool) -> str:
    """The extensions that can be read (``writable=False``) or written, for messages and help texts."""
    exts = list(dict.fromkeys(s for f in FORMATS if f.writable or not writable for s in f.suffixes if s != "/"))
    return ", ".join(exts) + ", or a Hugging Face folder"


def by_key(key: str) -> Format:
    """The format called ``key`` (``--to``)."""
    for f in FORMATS:
        if f.key == key:
            return f
    raise ConvertError(f"unknown format {key!r}: expected one of {[f.key for f in FORMATS if f.writable]}")


def is_folder_target(path: str | os.PathLike) -> bool:
    """A folder names the Hugging Face format: an existing directory, or a path ending in a separator."""
    p = os.fspath(path)
    return os.path.isdir(p) or p.endswith(("/", os.sep))


def format_of(path: str | os.PathLike, *, writing: bool = False) -> Format:
    """The format named by ``path``: a folder is a Hugging Face folder, else the longest matching extension.

    Formats sharing an extension (``.weights.h5``: Keras, keras-hub) resolve to the first in :data:`FORMATS`;
    the others are named by ``--to``.
    """
    if is_folder_target(path):
        return HF_FOLDER
    name = os.path.basename(os.fspath(path)).lower()
    hits = [(len(s), f) for f in FORMATS for s in f.suffixes if s != "/" and name.endswith(s)]
    if not hits:
        ext = "".join(re.findall(r"\.[^.]*$", name)) or "no extension"
        raise ConvertError(
            f"unsupported extension {ext!r} for {os.fspath(path)}: expected one of {suffix_list(writing)}"
        )
    fmt = max(hits, key=lambda h: h[0])[1]
    if writing and not fmt.writable:
        raise ConvertError(f"{os.fspath(path)}: {fmt.label} files are read only; write one of {suffix_list(True)}")
    return fmt


def save_format(path: str | os.PathLike, framework: str) -> Format:
    """The format a ``framework`` model is saved in at ``path``: canonical or one of the framework's own.

    A model saves only what its own framework can write; another framework's
    format is refused (before anything is written) with the two ways to get there.
    """
    fmt = format_of(path, writing=True)
    if fmt.key == "hf":
        raise ConvertError(
            f"{os.fspath(path)}: a Hugging Face folder is written by `resnet-parity convert SRC FOLDER/`"
        )
    if fmt.framework not in (None, framework):
        mine = list(dict.fromkeys(s for f in FORMATS if f.framework == framework and f.writable for s in f.suffixes))
        raise ConvertError(
            f"a {framework} model saves to .safetensors or {'/'.join(mine)}; {os.fspath(path)} is a {fmt.label}: "
            f"load the weights into resnet_{fmt.framework} or use `resnet-parity convert`"
        )
    return fmt
