"""The porting pipeline: any file -> :class:`Source` (config + canonical weights) -> any file.

Reading goes file -> tensors as stored (:mod:`.readers`) -> naming scheme
(:mod:`.schemes`) -> canonical names and layout -> config (stated by the file or
inferred) -> strict validation. Writing goes canonical -> the target format through
a temp file and a rename.

Data flows one way. Framework packages call :func:`read` and :func:`.canonical.write`
(``porting.write_canonical``), which never call a framework package. Only :func:`write`
and :func:`convert` (the ``convert`` command's entry points, never called by a framework
package) go down into a framework, through its public interface (``build``,
``import_weights``, ``save``), when the target is that framework's native format.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import frameworks, spec
from ..weights import check_weights
from . import canonical, hf, keras_hub, schemes
from .formats import FORMATS, ConvertError, Format, by_key, format_of
from .readers import RawFile, read_raw


@dataclass
class Source:
    """A file read, mapped and validated: a config and canonical float32 weights."""

    path: str
    raw: RawFile
    config: spec.Config
    weights: dict[str, np.ndarray]
    scheme: str
    mapping: dict[str, str] = field(default_factory=dict)  # file name -> canonical name
    notes: list[str] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def framework(self) -> str:
        """Where the weights came from: as stated by a canonical file, else the format's framework."""
        return self.raw.metadata.get("framework") or self.raw.format.framework or "unknown"


KERAS_HUB = ("keras-hub", "keras-hub-backbone")  # named by --to only: their extension is Keras' .weights.h5
HEADLESS_CLASSES = 1000  # ImageNet's, what a backbone is pretrained for


def _refuse_existing(path: str, overwrite: bool) -> None:
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} already exists: refusing to overwrite it (use --force)")


# --------------------------------------------------------------------------- reading
def resolve(
    path: str,
    raw: RawFile,
    *,
    names: str | None = None,
    model: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    allow_nonfinite: bool = False,
) -> Source:
    """Map ``raw``'s tensors to canonical names and layout, settle the config and validate.

    Separate from :func:`read` so that ``inspect`` can show a file's raw tensors even
    when they fit no model.
    """
    overrides = dict(overrides or {})
    if model is not None and model not in spec.MODELS:
        raise ConvertError(f"unknown model {model!r}: expected one of {list(spec.MODELS)}")
    stated = raw.config
    if stated is not None and model and stated.model != model:
        raise ConvertError(f"{path} holds a {stated.model}, not a {model} as asked")
    if names is None and canonical.is_canonical(raw.metadata):
        names = "canonical"  # the file says so
    try:
        m = schemes.detect(list(raw.tensors), scheme=names, model=model or (stated.model if stated else None))
    except schemes.SchemeError as e:
        raise ConvertError(f"{path}: {e}") from None
    weights = schemes.to_canonical(m, raw.tensors)
    notes = list(raw.notes) + m.notes
    if m.scheme.headless:  # a backbone: the classifier is new, zero (logits 0), its size as asked
        n = int(overrides.get("num_classes", HEADLESS_CLASSES))
        weights["fc.weight"], weights["fc.bias"] = np.zeros((n, 512), np.float32), np.zeros(n, np.float32)
        notes.append(f"a backbone without classifier: fc added with zeros for {n} classes (--num-classes)")
    if stated is not None:
        cfg = spec.make_config(stated.model, **{**stated.to_dict(), **overrides})
    else:
        cfg = schemes.infer_config(m.skeleton, weights, overrides)
    try:
        checked = check_weights(cfg, weights, allow_nonfinite=allow_nonfinite)
    except ValueError as e:
        raise ConvertError(f"{path}: {e}") from None
    if m.ignored:
        kinds = sorted({re.sub(r"^.*[./]", "", k) for k in m.ignored})
        notes.append(f"ignored {len(m.ignored)} bookkeeping entries ({', '.join(kinds)})")
    return Source(path, raw, cfg, checked, m.scheme.name, {k: p.name for k, p in m.mapping.items()}, notes)


def read(
    path: str | os.PathLike,
    *,
    names: str | None = None,
    model: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    allow_nonfinite: bool = False,
    ema: bool = False,
) -> Source:
    """Read any supported weights file into a config and canonical weights.

    Args:
        path: a ``.safetensors``, ``.pt``/``.pth``, ``.weights.h5``, ``.keras``, ``.h5`` or ``.pdparams`` file.
        names: force a naming scheme (see :data:`resnet_core.porting.schemes.SCHEMES`) instead of detecting it.
        model: expect this model (``resnet18`` or ``minimodel``).
        overrides: config fields that win over what the file states or its shapes imply.
        allow_nonfinite: accept NaN/Inf values (``inspect`` reports them instead).
        ema: from a training checkpoint, read its averaged weights (timm ``state_dict_ema``).
    """
    path = os.fspath(path)
    return resolve(
        path, read_raw(path, ema=ema), names=names, model=model, overrides=overrides, allow_nonfinite=allow_nonfinite
    )


# --------------------------------------------------------------------------- writing
def write(
    path: str | os.PathLike,
    cfg: spec.Config,
    weights: Mapping[str, np.ndarray],
    *,
    framework: str = "unknown",
    overwrite: bool = True,
    to: str | None = None,
    labels: list[str] | None = None,
) -> Format:
    """Write canonical ``weights`` to ``path`` in the format its extension names, atomically.

    A native format is written by building the framework's model, loading the
    weights strictly and saving it with the framework's own API, so the file
    loads back with that framework's plain calls. ``to="keras-hub"`` (or
    ``"keras-hub-backbone"``) writes the ``.weights.h5`` that keras-hub's
    ``ResNetImageClassifier`` (``ResNetBackbone``) built with
    :data:`.keras_hub.BACKBONE_ARGS` loads, through ``resnet_keras.hub``. The weights are validated first:
    a bad set imports no framework and creates no file.
    """
    path = os.fspath(path)
    fmt = target_format(path, to)
    checked = check_weights(cfg, weights)  # before any framework import or file creation
    if fmt.key == "hf":  # a folder, written without transformers
        hf.write_folder(path, cfg, checked, labels=labels, overwrite=overwrite)
        return fmt
    _refuse_existing(path, overwrite)
    if fmt.key in KERAS_HUB:  # Keras writes it, from keras-hub's graph rebuilt in resnet_keras.hub
        keras_hub.check_writable(cfg)  # before importing Keras
        frameworks.get("keras")  # the package's start-up (import order, quiet TensorFlow), or why it is missing
        hub = importlib.import_module("resnet_keras.hub")
        hub.save(path, cfg, checked, backbone=fmt.key == "keras-hub-backbone", overwrite=overwrite)
        return fmt
    if fmt.framework is None:
        canonical.write(path, cfg, checked, framework, overwrite=overwrite)
        return fmt
    fw = frameworks.get(fmt.framework)
    net = fw.build(cfg.model, initialize=False, **cfg.to_dict())
    fw.import_weights(net, checked)
    fw.save(net, path, overwrite=overwrite)
    return fmt


def target_format(path: str, to: str | None) -> Format:
    """The format to write ``path`` in: ``to`` (``--to``) when given, else named by the path (folder or extension)."""
    if to is None:
        return format_of(path, writing=True)
    fmt = by_key(to)
    if not fmt.writable:
        raise ConvertError(f"{fmt.label} files are read only; --to takes {[f.key for f in FORMATS if f.writable]}")
    if fmt.key != "hf":
        named = format_of(path, writing=True)  # an extension that contradicts --to is a mistake
        if named.suffixes != fmt.suffixes:
            raise ConvertError(f"--to {to} but {path} names a {named.label}: use a {'/'.join(fmt.suffixes)} name")
    return fmt


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    names: str | None = None,
    model: str | None = None,
    overwrite: bool = False,
    to: str | None = None,
    ema: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[Source, Format]:
    """Port ``src`` to ``dst``; formats from the paths (or ``to``). Nothing is written unless all is well."""
    src, dst = os.fspath(src), os.fspath(dst)
    dst_fmt = target_format(dst, to)  # fail on a bad target before reading anything
    if dst_fmt.key != "hf":
        _refuse_existing(dst, overwrite)
    if os.path.exists(src) and os.path.exists(dst) and os.path.samefile(src, dst):
        raise ConvertError(f"source and destination are the same file: {src}")
    source = read(src, names=names, model=model, ema=ema, overrides=overrides)
    labels = json.loads(source.raw.metadata["labels"]) if "labels" in source.raw.metadata else None
    write(dst, source.config, source.weights, framework=source.framework, overwrite=overwrite, to=to, labels=labels)
    return source, dst_fmt
