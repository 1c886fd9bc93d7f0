"""Naming schemes of the weight files users have, as data; detection and config inference.

A scheme says how a canonical tensor (``layer2.0.downsample.0.weight``, role
``conv.weight``) is named and laid out in some file. It is data: module renames
(regular expressions on the canonical module), the slot names and separator of
one framework (:mod:`resnet_core.names`), that framework's layout, bookkeeping
tensors to drop, and an optional prefix to strip. The Keras tutorial's
auto-named layers are mapped by position instead: the k-th Conv2D the tutorial's
code creates is the k-th canonical conv (Keras' name counters record that order).

Detection compares a file's names with every scheme's expected names for each
model (names do not depend on num_classes, stem or in_channels); the best
exact match wins, and when none is exact the error names the closest scheme and
the tensors that did not fit. The config is then inferred from the shapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import names, spec


class SchemeError(ValueError):
    """A file's tensor names follow no known scheme (or not the one asked for)."""


@dataclass(frozen=True)
class Scheme:
    name: str
    description: str
    slots: str  # framework whose slot names and separator the file uses: torch, paddle or keras
    layout: str  # framework whose tensor layout the file uses
    module_renames: tuple[tuple[str, str], ...] = ()  # (regex on canonical module, replacement)
    # prefixes every name may carry, stripped while all names share one: DataParallel's "module.",
    # a Lightning module's "model." attribute, torch.compile's "_orig_mod."
    strip_prefix: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()  # regexes of bookkeeping entries that are not weights
    positional: bool = False  # Keras auto-names, mapped by creation order
    models: tuple[str, ...] = spec.MODELS
    aliases: tuple[str, ...] = ()
    headless: bool = False  # a backbone without the classifier (fc is not in the file)
    keras_dots: bool = False  # Keras layers named with the canonical module's dots (names.framework_name)


# num_batches_tracked: BN's step counter; n_averaged: torchvision's ExponentialMovingAverage counter.
_TORCH_IGNORE = (r"(^|\.)num_batches_tracked$", r"^n_averaged$")
_TORCH_PREFIXES = ("module.", "model.", "_orig_mod.")


def _hf_renames(prefix: str) -> tuple[tuple[str, str], ...]:
    """Canonical module -> Hugging Face transformers ``ResNetModel`` module (stage and conv indices from 0)."""
    out = [
        (r"^conv1$", f"{prefix}embedder.embedder.convolution"),
        (r"^bn1$", f"{prefix}embedder.embedder.normalization"),
    ]
    for stage in range(1, 5):
        block = rf"{prefix}encoder.stages.{stage - 1}.layers.\1"
        for i in (1, 2):
            out += [
                (rf"^layer{stage}\.(\d+)\.conv{i}$", f"{block}.layer.{i - 1}.convolution"),
                (rf"^layer{stage}\.(\d+)\.bn{i}$", f"{block}.layer.{i - 1}.normalization"),
            ]
        out += [
            (rf"^layer{stage}\.(\d+)\.downsample\.0$", f"{block}.shortcut.convolution"),
            (rf"^layer{stage}\.(\d+)\.downsample\.1$", f"{block}.shortcut.normalization"),
        ]
    return (*out, (r"^fc$", "classifier.1"))


def _keras_hub_renames() -> tuple[tuple[str, str], ...]:
    """Canonical module -> keras-hub ``ResNetBackbone`` layer (``block_type="basic_block"``).

    From keras_hub/src/models/resnet/resnet_backbone.py: ``conv1_conv``/``conv1_bn``, then
    ``stack{s}_block{b}_{k}_conv``/``_bn`` with k = 0 for the projection shortcut, 1 and 2 for
    the block's convs; the classifier's Dense is ``predictions`` (resnet_image_classifier.py).
    """
    out = [(r"^conv1$", "conv1_conv"), (r"^bn1$", "conv1_bn"), (r"^fc$", "predictions")]
    for stage in range(1, 5):
        out += [
            (rf"^layer{stage}\.(\d+)\.conv(\d)$", rf"stack{stage - 1}_block\1_\2_conv"),
            (rf"^layer{stage}\.(\d+)\.bn(\d)$", rf"stack{stage - 1}_block\1_\2_bn"),
            (rf"^layer{stage}\.(\d+)\.downsample\.0$", rf"stack{stage - 1}_block\1_0_conv"),
            (rf"^layer{stage}\.(\d+)\.downsample\.1$", rf"stack{stage - 1}_block\1_0_bn"),
        ]
    return tuple(out)


# Older keras-hub backbones (include_rescaling=True) hold the input Normalization's constants.
_KERAS_HUB_IGNORE = (r"^normalization/",)


_PADDLE_IGNORE = (r"^StructuredToParameterName@@$",)

SCHEMES: tuple[Scheme, ...] = (
    Scheme(
        "canonical",
        "canonical names = PyTorch state_dict = torchvision resnet18",
        "torch",
        "torch",
        strip_prefix=_TORCH_PREFIXES,
        ignore=_TORCH_IGNORE,
        aliases=("torch", "torchvision", "timm"),
    ),
    Scheme(
        "paddle",
        "Paddle state_dict = paddle.vision resnet18 (BN _mean/_variance, linear weight [in, out])",
        "paddle",
        "paddle",
        ignore=_PADDLE_IGNORE,
        aliases=("paddle.vision",),
    ),
    Scheme(
        "keras",
        "this project's Keras layers (layer1_0_bn1/variable, HWIO kernels, Dense [in, out])",
        "keras",
        "keras",
    ),
    # Keras files this project wrote before its layer names lost their dots (Keras' torch backend refuses dots).
    Scheme(
        "keras-dotted",
        "this project's Keras layers as named before 2026-11 (layer1.0.bn1/variable)",
        "keras",
        "keras",
        keras_dots=True,
    ),
    Scheme(
        "pytorch-cifar",
        "kuangliu/pytorch-cifar ResNet18 (shortcut.0/1, linear)",
        "torch",
        "torch",
        module_renames=((r"^(layer\d\.\d)\.downsample\.", r"\1.shortcut."), (r"^fc$", "linear")),
        strip_prefix=_TORCH_PREFIXES,
        ignore=_TORCH_IGNORE,
        models=("resnet18",),
        aliases=("kuangliu",),
    ),
    Scheme(
        "hf",
        "Hugging Face transformers ResNetForImageClassification (resnet.embedder/encoder.stages, classifier.1)",
        "torch",
        "torch",
        module_renames=_hf_renames("resnet."),
        ignore=_TORCH_IGNORE,
        models=("resnet18",),
        aliases=("transformers",),
    ),
    Scheme(
        "hf-backbone",
        "Hugging Face transformers ResNetModel (embedder/encoder.stages, no classifier)",
        "torch",
        "torch",
        module_renames=_hf_renames(""),
        ignore=_TORCH_IGNORE,
        models=("resnet18",),
        headless=True,
    ),
    Scheme(
        "paddle-writeup",
        "the Paddle ResNet-18 write-up (layers1..4, downsample conv with bias, classifier)",
        "paddle",
        "paddle",
        module_renames=((r"^layer(\d)\.", r"layers\1."), (r"^fc$", "classifier")),
        ignore=_PADDLE_IGNORE,
        models=("resnet18",),
    ),
    Scheme(
        "d2l",
        "d2l's ResNet-18 (nn.Sequential b1..b5: 0.0 conv, 0.1 BN, N.M.conv1/bn1/conv2/bn2, 1x1 conv3, 7 linear)",
        "torch",
        "torch",
        module_renames=(
            (r"^conv1$", "0.0"),
            (r"^bn1$", "0.1"),
            (r"\.downsample\.0$", ".conv3"),
            (r"^layer(\d)\.", r"\1."),  # b2..b5 are the net's entries 1..4
            (r"^fc$", "7"),  # after 5 (AdaptiveAvgPool2d) and 6 (Flatten)
        ),
        strip_prefix=_TORCH_PREFIXES,
        ignore=_TORCH_IGNORE,
        models=("resnet18",),
    ),
    Scheme(
        "keras-hub",
        "keras-hub ResNetImageClassifier, ResNet-18 (conv1_conv, stack{s}_block{b}_{k}_conv/_bn, predictions)",
        "keras",
        "keras",
        module_renames=_keras_hub_renames(),
        ignore=_KERAS_HUB_IGNORE,
        models=("resnet18",),
        aliases=("keras_hub",),
    ),
    Scheme(
        "keras-hub-backbone",
        "keras-hub ResNetBackbone, ResNet-18 (no classifier)",
        "keras",
        "keras",
        module_renames=_keras_hub_renames(),
        ignore=_KERAS_HUB_IGNORE,
        models=("resnet18",),
        headless=True,
    ),
    Scheme(
        "keras-tutorial",
        "the Keras tutorial's MiniModel (auto-named conv2d_N, batch_normalization_N, dense)",
        "keras",
        "keras",
        positional=True,
        models=("minimodel",),
    ),
)

# Keras' auto-name of each layer kind, for the positional scheme.
AUTO_NAMES = {"conv": "conv2d", "bn": "batch_normalization", "linear": "dense"}
_AUTO_RE = re.compile(rf"^({'|'.join(AUTO_NAMES.values())})(?:_(\d+))?/")


def scheme_names() -> list[str]:
    return [s.name for s in SCHEMES] + [a for s in SCHEMES for a in s.aliases]


def get(name: str) -> Scheme:
    for s in SCHEMES:
        if name == s.name or name in s.aliases:
            return s
    raise SchemeError(f"unknown naming scheme {name!r}: expected one of {scheme_names()}")


# --------------------------------------------------------------------------- name mapping
def _skeletons(models: tuple[str, ...]) -> list[spec.Config]:
    """One config per distinct set of names: the model and its ``name_options`` (the spec says which)."""
    return [cfg for model in models for cfg in spec.CONFIGS[model].skeletons()]


def expected_names(scheme: Scheme, cfg: spec.Config) -> dict[str, spec.ParamSpec]:
    """The name each canonical tensor of ``cfg`` has under ``scheme`` (in canonical order)."""
    out: dict[str, spec.ParamSpec] = {}
    counters: dict[str, dict[str, int]] = {k: {} for k in AUTO_NAMES}
    for p in cfg.param_specs():
        if scheme.headless and p.role.startswith("linear."):
            continue
        module = p.module
        if scheme.positional:
            kind = p.role.split(".")[0]
            index = counters[kind].setdefault(module, len(counters[kind]))
            module = AUTO_NAMES[kind] + (f"_{index}" if index else "")
        for pattern, repl in scheme.module_renames:
            module = re.sub(pattern, repl, module)
        out[names.framework_name(scheme.slots, module, p.role, keras_dots=scheme.keras_dots)] = p
    return out


def _renumber_auto_names(keys: list[str]) -> dict[str, str]:
    """Keras auto-names renumbered from 0 per kind, keeping their order (``conv2d_17`` may be the first)."""
    seen: dict[str, set[int]] = {}
    for k in keys:
        m = _AUTO_RE.match(k)
        if m:
            seen.setdefault(m.group(1), set()).add(int(m.group(2) or 0))
    rank = {kind: {n: i for i, n in enumerate(sorted(nums))} for kind, nums in seen.items()}
    out = {}
    for k in keys:
        m = _AUTO_RE.match(k)
        if not m:
            out[k] = k
            continue
        i = rank[m.group(1)][int(m.group(2) or 0)]
        out[k] = f"{m.group(1)}{f'_{i}' if i else ''}/{k[m.end() :]}"
    return out


_PREFIX_WHY = {
    "module.": "a model wrapped in DataParallel",
    "model.": "a wrapper module's attribute, as in Lightning",
    "_orig_mod.": "a torch.compile'd model",
}


@dataclass
class Match:
    """How a file's names map onto one model under one scheme."""

    scheme: Scheme
    skeleton: spec.Config
    mapping: dict[str, spec.ParamSpec]  # file name -> canonical tensor
    missing: list[str]  # canonical names with no file tensor
    unexpected: list[str]  # file names that fit no canonical tensor
    notes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not self.missing and not self.unexpected

    @property
    def share(self) -> float:
        """The share of the file's tensors (bookkeeping aside) that fit this scheme."""
        total = len(self.mapping) + len(self.unexpected)
        return len(self.mapping) / total if total else 0.0

    @property
    def score(self) -> tuple[float, float]:
        """Closeness: the share of the file's tensors that fit, then the share of the model found."""
        expected = len(self.mapping) + len(self.missing)
        return self.share, len(self.mapping) / expected if expected else 0.0

    @property
    def model(self) -> str:
        return self.skeleton.model


def match(scheme: Scheme, keys: list[str], cfg: spec.Config) -> Match:
    """Map the file names ``keys`` onto ``cfg``'s canonical tensors under ``scheme``."""
    ignored = [k for k in keys if any(re.search(p, k) for p in scheme.ignore)]
    kept = [k for k in keys if k not in set(ignored)] if ignored else list(keys)
    notes = []
    normalized = {k: k for k in kept}
    stripped = True
    while stripped and kept:
        stripped = False
        for prefix in scheme.strip_prefix:
            if all(v.startswith(prefix) for v in normalized.values()):
                normalized = {k: v[len(prefix) :] for k, v in normalized.items()}
                notes.append(f"stripped the {prefix!r} prefix ({_PREFIX_WHY.get(prefix, 'a wrapper')})")
                stripped = True
    if scheme.positional:
        renum = _renumber_auto_names(list(normalized.values()))
        normalized = {k: renum[v] for k, v in normalized.items()}
        notes.append("Keras auto-named layers mapped by creation order")
    expected = expected_names(scheme, cfg)
    mapping = {k: expected[v] for k, v in normalized.items() if v in expected}
    found = {p.name for p in mapping.values()}
    missing = [p.name for p in expected.values() if p.name not in found]
    unexpected = [k for k in kept if k not in mapping]
    return Match(scheme, cfg, mapping, missing, unexpected, notes, ignored)


def _short(items: list[str], limit: int = 5) -> str:
    return ", ".join(items[:limit]) + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def describe_mismatch(m: Match) -> str:
    parts = []
    if m.missing:
        parts.append(f"missing {len(m.missing)} canonical tensor(s): {_short(m.missing)}")
    if m.unexpected:
        parts.append(f"{len(m.unexpected)} tensor(s) did not fit: {_short(m.unexpected)}")
    return "; ".join(parts)


def detect(keys: list[str], *, scheme: str | None = None, model: str | None = None) -> Match:
    """The scheme (and model) whose names the file's ``keys`` follow exactly.

    ``scheme`` forces one scheme (``--names``); ``model`` restricts the candidates.
    Raises :class:`SchemeError` naming the closest scheme and the tensors that did not fit.
    """
    if not keys:
        raise SchemeError("the file holds no tensors")
    candidates = [get(scheme)] if scheme else list(SCHEMES)
    models = (model,) if model else spec.MODELS
    matches = [match(s, keys, cfg) for s in candidates for cfg in _skeletons(tuple(m for m in s.models if m in models))]
    if not matches:
        raise SchemeError(f"scheme {scheme!r} does not describe {model!r} (it covers {list(get(scheme).models)})")
    # Exact matches first, then the largest share of names that fit; ties keep the table's order.
    best = max(matches, key=lambda m: (m.exact, m.score))
    if best.exact:
        return best
    what = f"{model} " if model else ""
    if scheme:
        raise SchemeError(
            f"the {len(keys)} tensors do not follow the {best.scheme.name!r} scheme for {best.model}: "
            f"{describe_mismatch(best)}"
        )
    raise SchemeError(
        f"no known naming scheme fits the {len(keys)} tensors (not a {what or 'resnet18/minimodel '}checkpoint?): "
        f"closest is {best.scheme.name!r} for {best.model}, which {len(best.mapping)} of the "
        f"{len(best.mapping) + len(best.unexpected)} tensors fit ({best.share:.0%}; "
        f"{len(best.mapping)} of the {len(best.mapping) + len(best.missing)} it expects found); "
        f"{describe_mismatch(best)}; --names chooses a scheme"
    )


def to_canonical(m: Match, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The file's tensors under canonical names and in the canonical layout, in canonical order."""
    out: dict[str, np.ndarray] = {}
    by_canonical = {p.name: (k, p) for k, p in m.mapping.items()}
    for p in m.skeleton.param_specs():
        if p.name not in by_canonical:
            continue
        a = np.asarray(tensors[by_canonical[p.name][0]])
        perm = getattr(names.ROLES[p.role], f"{m.scheme.layout}_perm", None)
        # A tensor of the wrong rank is passed on untouched, for check_weights to report by name.
        out[p.name] = names.from_framework(m.scheme.layout, p.role, a) if perm is None or a.ndim == len(perm) else a
    return out


# --------------------------------------------------------------------------- config inference
def infer_config(
    skeleton: spec.Config, weights: Mapping[str, np.ndarray], overrides: Mapping[str, Any] | None = None
) -> spec.Config:
    """The config that canonical ``weights`` describe (num_classes, stem, in_channels from their shapes).

    ``skeleton`` carries the model and what the names fixed (its ``name_options``: ResNet-18's
    conv_bias, shortcut_bn, shortcut_bias); the spec says which option each shape states.
    ``overrides`` win over anything inferred (MiniModel's ``softmax`` cannot be inferred from weights and defaults to
    the tutorial's ``True``).
    """
    shapes = {k: tuple(np.shape(a)) for k, a in weights.items()}
    try:
        options = skeleton.options_from_shapes(shapes)
    except ValueError as e:
        raise SchemeError(str(e)) from None
    return spec.make_config(skeleton.model, **{**options, **(overrides or {})})
