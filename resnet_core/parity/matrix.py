"""The parity matrix: every numerical level, for every variant and framework direction.

:class:`Matrix` is the one place where the numerical levels are computed, for every
model variant and every ordered framework pair (a *direction* ``a -> b``: ``a`` holds
seeded random weights and random BN statistics, they are exported with ``a``'s porting
API and imported into ``b`` with ``b``'s, and the two are run on the same input). The
parity tests and ``resnet-parity report`` both use it, so they can never measure different things.

Levels: ``structure`` (counts and shapes, from :mod:`resnet_core.parity.structure`), ``eval``
(every probe in eval mode, at each variant's sizes), ``train`` (every probe with batch
statistics, dropout off), ``gradients`` (cross-entropy gradients, float64), ``sgd`` and
``adam`` (weights and BN statistics after optimizer steps, float64).
"""

from __future__ import annotations

import gc
import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .. import frameworks, spec
from ..weights import random_input, random_weights
from . import compare
from .settings import (
    BATCH,
    BN_RUNNING_VAR,
    DECOY_SEED,
    FORWARD_TOL,
    GRAD_FLOOR_REL,
    GRAD_TOL,
    INPUT_SEED,
    LABEL_SEED,
    LEVELS,
    OPTIMIZERS,
    STEP_TOL,
    TRAIN_FORWARD_TOL,
    WEIGHT_SEED,
    optimizer_settings,
)


class DeviceUnavailable(RuntimeError):
    """A framework cannot run on the requested device; the message says why."""


@dataclass
class Row:
    """One cell of the matrix: a level for a variant and a direction on a device."""

    variant: str
    direction: tuple[str, str]
    level: str
    device: str
    comparison: compare.Comparison | None = None
    skipped: str | None = None  # the reason, when the level could not run here
    detail: str = ""  # e.g. the input size
    ok: bool = False  # the verdict of a level without a numerical comparison (structure)
    figure: bool = False  # a measurement reported without a verdict (the error with TF32 on)

    @property
    def passed(self) -> bool | None:
        if self.skipped is not None or self.figure:
            return None
        return self.comparison.passed if self.comparison is not None else self.ok

    @property
    def status(self) -> str:
        if self.figure and self.skipped is None:
            return "figure"
        return "skip" if self.passed is None else ("pass" if self.passed else "FAIL")


class Matrix:
    """Builds, transfers and runs the models of every framework, and caches each result.

    Every framework gets the same seeded random weights and BN statistics
    (:data:`WEIGHT_SEED`). For a direction ``a -> b``, ``a`` imports them, exports them with
    its own ``export_weights``, and ``b`` imports that with its ``import_weights`` -- after
    first importing different ("decoy") weights, so a tensor the import failed to write would
    show. What ``b`` then holds is read back with ``b``'s ``export_weights`` and hashed; a
    result is a function of (framework, weights held, input), so it is computed once per
    digest and shared by every direction whose transfer delivered exactly those weights. A
    lossy or wrong transfer gives another digest and its own computation.

    Models are built once per (framework, variant). What a source exports is keyed by its names,
    dtypes, shapes, bytes *and memory layout* (:func:`_export_key`); ``b``'s import is a function of
    that dict alone (the decoy comes first every time), so a transfer into ``b`` is made once per
    export key and its digest shared by every source whose export has that key: sources whose exports
    are the same bytes in the same layout (the usual case: every lossless export of one variant)
    cost ``b`` one transfer, not one each, and a lossy, reordered or strided export still gets its
    own. A later level whose result is already cached for a digest neither transfers nor runs
    anything. A model is reloaded only when it holds other weights or may have changed: after a
    train-mode run (BN statistics move) and after it was handed out by :meth:`model` or :meth:`load`.
    Optimizer steps and gradients run on float64 copies.
    """

    def __init__(self, device: str = "cpu", fws: list[str] | tuple[str, ...] | None = None, *, keep: int = 16) -> None:
        if device not in ("cpu", "gpu"):
            raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'gpu'")
        self.device = device
        self.mods: dict[str, ModuleType] = frameworks.load_all(fws) if fws is not None else {}
        # Models of the most recently used variant, float32 and float64 copies: (fw, dtype) -> model.
        self._models: OrderedDict[str, dict[tuple[str, str], Any]] = OrderedDict()
        # Results, least recently used dropped first: a ResNet-18 float64 gradient dict alone is
        # 90 MB. The optimizer levels of one variant need 15 at once (per implementation: the weights
        # held, the SGD and the Adam result); with fewer, the suite's test order recomputed 38 steps
        # instead of 10 (measured). 16 of ResNet-18 at 224x224 are at most ~1.5 GB.
        self._cache: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
        self._keep = keep
        self._weights: OrderedDict[tuple[str, int], dict[str, np.ndarray]] = OrderedDict()
        self._user: dict[str, tuple[spec.Variant, dict[str, np.ndarray]]] = {}
        # (fw, variant, source) -> digest of what fw holds after the transfer from source (deterministic)
        self._digests: dict[tuple[str, str, str], str] = {}
        # (source, variant) -> the export key of what source exports holding its own weights
        self._export_keys: dict[tuple[str, str], str] = {}
        # (fw, variant, export key) -> digest of what fw holds after importing an export with that key
        self._received: dict[tuple[str, str, str], str] = {}
        # (fw, variant) -> what the float32 model holds unchanged: fw itself (its own weights, imported directly) or
        # the digest of what a transfer left in it; absent: reload
        self._holds: dict[tuple[str, str], str] = {}
        # :meth:`rows` uses the matrix from one thread per worker implementation, each on its own implementation's
        # model; this lock guards what they share (the models of a variant, the weights, the cache)
        self._lock = threading.RLock()
        # (source, variant) -> (export key, a copy of the export) while :meth:`rows` runs threads
        self._handed: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}

    def add_weights(self, label: str, cfg: spec.Config, weights: dict[str, np.ndarray]) -> str:
        """Run the matrix on these weights (``report --weights``): a variant of their config, named ``label``.

        Its sizes are those of the table's variant with the same model and stem (the sizes
        each stem was designed for); returns the variant id to pass to the levels.
        """
        stem = cfg.to_dict().get("stem")
        like = next(
            (v for v in spec.VARIANTS.values() if v.model == cfg.model and v.config.to_dict().get("stem") == stem),
            None,
        )
        if like is None:
            raise ValueError(f"no variant of {cfg.model} with stem {stem!r} to take input sizes from")
        v = spec.Variant(label, cfg.model, cfg.to_dict(), like.eval_sizes, like.train_size)
        self._user[label] = (v, {k: np.asarray(a, np.float32) for k, a in weights.items()})
        self._forget(label)
        return label

    def variant(self, variant: str) -> spec.Variant:
        """A variant of the table, or one added with :meth:`add_weights`."""
        return self._user[variant][0] if variant in self._user else spec.variant(variant)

    # ------------------------------------------------------------------ models and data
    def mod(self, fw: str) -> ModuleType:
        """The framework package, imported on first use (in the safe order, see frameworks.load_all)."""
        if fw not in self.mods:
            self.mods.update(frameworks.load_all([*self.mods, fw]))
        return self.mods[fw]

    def unavailable(self, fw: str) -> str | None:
        """Why ``fw`` cannot run on this matrix's device (not installed, no GPU), or ``None``."""
        reason = frameworks.missing_reason(fw)
        if reason is None and self.device == "gpu":
            reason = self.mod(fw).gpu_unavailable_reason()
        return reason

    def _variant_models(self, variant: str) -> dict[tuple[str, str], Any]:
        with self._lock:
            if variant not in self._models:
                self._models[variant] = {}
                while len(self._models) > 1:  # a float64 ResNet-18 per framework is 90 MB, plus the framework's
                    dropped, _ = self._models.popitem(last=False)
                    self._unhold(dropped)
                    gc.collect()
            self._models.move_to_end(variant)
            return self._models[variant]

    def _unhold(self, variant: str) -> None:
        """Forget what ``variant``'s models hold and export (they were dropped, or its weights replaced)."""
        self._holds = {k: v for k, v in self._holds.items() if k[1] != variant}
        self._export_keys = {k: v for k, v in self._export_keys.items() if k[1] != variant}

    def _forget(self, variant: str) -> None:
        """Drop every transfer, digest and result of ``variant`` (its weights were replaced)."""
        self._models.pop(variant, None)
        self._unhold(variant)
        self._digests = {k: v for k, v in self._digests.items() if k[1] != variant}
        self._received = {k: v for k, v in self._received.items() if k[1] != variant}
        self._cache = OrderedDict((k, v) for k, v in self._cache.items() if k[2] != variant)

    def model(self, fw: str, variant: str) -> Any:
        """``fw``'s float32 model of ``variant``, built once (and again after another variant was used).

        The caller may change it, so the matrix reloads it before its own next use."""
        self._holds.pop((fw, variant), None)
        return self._model(fw, variant)

    def built(self, fw: str, variant: str) -> Any:
        """``fw``'s float32 model of ``variant`` as the matrix has it, to be read (counts, shapes), not changed.

        For :func:`resnet_core.parity.structure.rows`, so the structure level and the numerical levels share
        one build."""
        return self._model(fw, variant)

    def _model(self, fw: str, variant: str) -> Any:
        models = self._variant_models(variant)
        if (fw, "float32") not in models:
            v = self.variant(variant)
            models[fw, "float32"] = self.mod(fw).build(v.model, initialize=False, **v.kwargs)
        return models[fw, "float32"]

    def _cached(self, key: tuple, fn) -> dict[str, np.ndarray]:
        """``fn()``'s dict of arrays, computed once while it stays among the ``keep`` most recent."""
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        # Copies: PyTorch's export_weights returns numpy views of the live parameters, which
        # the next import or optimizer step would change under a kept result.
        out = {k: np.array(v, copy=True) for k, v in fn().items()}
        with self._lock:
            self._cache[key] = out
            while len(self._cache) > self._keep:
                self._cache.popitem(last=False)
        return out

    def canonical(self, variant: str, seed: int = WEIGHT_SEED) -> dict[str, np.ndarray]:
        """The weights every direction carries: the seeded random weights and BN statistics (kept for the two
        latest variants), or, for a variant added with :meth:`add_weights`, the user's own.

        The decoy weights a destination holds first stay random (another seed) for every variant."""
        if variant in self._user and seed == WEIGHT_SEED:
            return self._user[variant][1]
        key = (variant, seed)
        with self._lock:
            if key not in self._weights:
                self._weights[key] = random_weights(self.variant(variant).config, seed)
                while len(self._weights) > 4:
                    self._weights.popitem(last=False)
            self._weights.move_to_end(key)
            return self._weights[key]

    def load(self, fw: str, variant: str, source: str) -> tuple[Any, str]:
        """``fw``'s model holding the weights as ``source`` exports them, and a digest of what it holds.

        The caller may change the model, so the matrix reloads it before its own next use."""
        net = self._load(fw, variant, source)
        self._holds.pop((fw, variant), None)
        return net, self.digest(fw, variant, source)

    def _own(self, fw: str, variant: str) -> Any:
        """``fw``'s model holding the canonical weights, imported directly (the source of a direction)."""
        net = self._model(fw, variant)
        own = self._digests.get((fw, variant, fw))  # known after the first import
        if self._holds.get((fw, variant)) != fw and not self._holding(fw, variant, own):
            self._holds.pop((fw, variant), None)
            self.mod(fw).import_weights(net, self.canonical(variant))
            self._holds[fw, variant] = fw
        return net

    def _holding(self, fw: str, variant: str, digest: str | None) -> bool:
        """Whether ``fw``'s float32 model holds, unchanged, weights whose export has this digest: a lossless transfer
        leaves exactly its own weights, so neither a reload of them nor another such transfer is needed."""
        held = self._holds.get((fw, variant))
        if held == fw:
            held = self._digests.get((fw, variant, fw))
        return held is not None and held == digest

    def _remember_export(self, source: str, variant: str, exported: dict[str, Any]) -> str:
        """Record the key and the digest of what ``source`` exports holding its own weights; returns the key."""
        self._export_keys[source, variant], digest = _hashes(exported)
        self._digests.setdefault((source, variant, source), digest)
        return self._export_keys[source, variant]

    def _export_key(self, source: str, variant: str) -> str:
        """The key of what ``source`` exports holding its own weights (exporting once to learn it)."""
        if (source, variant) not in self._export_keys:
            self._remember_export(source, variant, self.mod(source).export_weights(self._own(source, variant)))
        return self._export_keys[source, variant]

    def _load(self, fw: str, variant: str, source: str) -> Any:
        """``fw``'s model holding the transfer from ``source``; transfers only what it does not hold already."""
        if fw == source:
            net = self._own(fw, variant)
            if (fw, variant, fw) not in self._digests:
                self._export_key(fw, variant)
            return net
        key = self._export_keys.get((source, variant))
        if key is None or not self._holding(fw, variant, self._received.get((fw, variant, key))):
            if (source, variant) in self._handed:  # a copy taken by :meth:`_ahead`: the source is not touched
                key, exported = self._handed[source, variant]
            else:  # one export serves both: the key (the first time) and the transfer
                exported = self.mod(source).export_weights(self._own(source, variant))
                if key is None:
                    key = self._remember_export(source, variant, exported)
            return self._take(fw, variant, source, exported, key)
        self._digests[fw, variant, source] = self._received[fw, variant, key]
        return self._model(fw, variant)

    def _take(self, fw: str, variant: str, source: str, exported: dict[str, Any], key: str) -> Any:
        """``fw``'s model holding ``source``'s export (whose key is ``key``): imported after the decoy, unless the
        model holds what that import leaves already."""
        net = self._model(fw, variant)
        if not self._holding(fw, variant, self._received.get((fw, variant, key))):
            self._holds.pop((fw, variant), None)
            self.mod(fw).import_weights(net, self.canonical(variant, DECOY_SEED))
            self.mod(fw).import_weights(net, exported)
            if (fw, variant, key) not in self._received:
                self._received[fw, variant, key] = _digest(self.mod(fw).export_weights(net))
            self._holds[fw, variant] = self._received[fw, variant, key]
        self._digests[fw, variant, source] = self._received[fw, variant, key]
        return net

    def digest(self, fw: str, variant: str, source: str) -> str:
        """A digest of what ``fw`` holds after the transfer from ``source`` (transferring once to learn it, or
        not at all when an export with the same key was transferred into ``fw`` before)."""
        if (fw, variant, source) not in self._digests:
            known = fw != source and self._received.get((fw, variant, self._export_key(source, variant)))
            if known:
                self._digests[fw, variant, source] = known
            else:
                self._load(fw, variant, source)
        return self._digests[fw, variant, source]

    def exported(self, variant: str, source: str) -> dict[str, np.ndarray]:
        """The weights as ``source`` exports them: what a transfer from ``source`` carries (a copy)."""
        return self.held(source, variant, source)

    def load_float64(self, fw: str, variant: str, source: str) -> Any:
        """A float64 copy of :meth:`load`'s model (one per framework and variant, overwritten each time)."""
        net = self._load(fw, variant, source)
        models = self._variant_models(variant)
        models[fw, "float64"] = self.mod(fw).cast_model(net, "float64", into=models.get((fw, "float64")))
        return models[fw, "float64"]

    def input(self, variant: str, hw: tuple[int, int]) -> np.ndarray:
        return random_input(self.variant(variant).config, BATCH, *hw, seed=INPUT_SEED)

    def labels(self, variant: str) -> np.ndarray:
        cfg = self.variant(variant).config
        return np.random.default_rng(LABEL_SEED).integers(0, cfg.num_classes, BATCH)

    @contextmanager
    def on_device(self, fw: str, net: Any) -> Iterator[Any]:
        reason = self.unavailable(fw)
        if reason:
            raise DeviceUnavailable(f"{frameworks.label(fw)} on gpu: {reason}")
        with self.mod(fw).on_device(net, self.device) as placed:
            yield placed

    # ------------------------------------------------------------------ raw results
    def probes(
        self, fw: str, variant: str, source: str, hw: tuple[int, int], training: bool = False, tf32: bool = False
    ) -> dict[str, np.ndarray]:
        """Every probe output of ``fw`` holding the weights transferred from ``source``."""

        def run() -> dict[str, np.ndarray]:
            net = self._load(fw, variant, source)
            if training:  # the run moves the BN statistics
                self._holds.pop((fw, variant), None)
            with self.on_device(fw, net) as placed, self.mod(fw).tf32(True) if tf32 else nullcontext():
                return self.mod(fw).probe_outputs(placed, self.input(variant, hw), training=training)

        return self._cached(("probes", fw, variant, self.digest(fw, variant, source), hw, training, tf32), run)

    def reference_probes(self, fw: str, variant: str) -> dict[str, np.ndarray]:
        """``fw``'s eval probes on its own weights at the variant's reference size: the result the eval level
        compares against there, and what the structure level reads its shapes from (one run for both)."""
        return self.probes(fw, variant, fw, self.variant(variant).reference_size)

    def gradients(self, fw: str, variant: str, source: str) -> dict[str, np.ndarray]:
        """Float64 cross-entropy gradients of ``fw`` holding the weights transferred from ``source``."""

        def run() -> dict[str, np.ndarray]:
            with self.on_device(fw, self.load_float64(fw, variant, source)) as placed:
                return self.mod(fw).gradients(
                    placed, self.input(variant, self.variant(variant).train_size), self.labels(variant)
                )

        return self._cached(("gradients", fw, variant, self.digest(fw, variant, source)), run)

    def step(self, fw: str, variant: str, source: str, optimizer: str) -> dict[str, np.ndarray]:
        """Every canonical tensor (float64) of ``fw`` after the optimizer steps of :data:`OPTIMIZERS`."""

        def run() -> dict[str, np.ndarray]:
            with self.on_device(fw, self.load_float64(fw, variant, source)) as placed:
                return self.mod(fw).optimizer_step(
                    placed,
                    self.input(variant, self.variant(variant).train_size),
                    self.labels(variant),
                    **optimizer_settings(frameworks.family(fw), optimizer),
                )

        return self._cached(("step", fw, variant, self.digest(fw, variant, source), optimizer), run)

    def held(self, fw: str, variant: str, source: str) -> dict[str, np.ndarray]:
        """What ``fw`` holds after the transfer from ``source``, read back with ``fw``'s export (float32, a copy)."""

        def run() -> dict[str, np.ndarray]:
            return self.mod(fw).export_weights(self._load(fw, variant, source))

        held = self._cached(("held", fw, variant, self.digest(fw, variant, source)), run)
        return {k: v.copy() for k, v in held.items()}

    def bn_samples(self, variant: str) -> dict[str, int]:
        """Samples per channel (N*H*W) that each BN averages over at the training size."""
        v = self.variant(variant)
        return {m: BATCH * hh * ww for m, (hh, ww) in spec.bn_input_sizes(v.config, *v.train_size).items()}

    def increments(self, fw: str, variant: str, source: str, optimizer: str) -> dict[str, np.ndarray]:
        """What the optimizer steps changed, in one convention for every framework.

        Trainable tensors: ``after - before``. BN running statistics: ``after - (1 - m)^k before``
        (the part the batches contributed); running_var increments of a framework that uses the
        biased batch variance are multiplied by ``n / (n - 1)``, PyTorch's unbiased convention.
        """
        cfg = self.variant(variant).config
        before = self.held(fw, variant, source)
        after = self.step(fw, variant, source, optimizer)
        keep = (1.0 - spec.bn_spec(cfg).momentum) ** OPTIMIZERS[optimizer]["steps"]
        n = self.bn_samples(variant)
        out = {}
        for p in spec.param_specs(cfg):
            a, b = np.asarray(after[p.name], dtype=np.float64), before[p.name].astype(np.float64)
            if p.trainable:
                out[p.name] = a - b
                continue
            inc = a - keep * b
            if p.role == "bn.running_var" and BN_RUNNING_VAR[frameworks.family(fw)] == "biased":
                inc = inc * (n[p.module] / (n[p.module] - 1))
            out[p.name] = inc
        return out

    # ------------------------------------------------------------------ every direction at once
    def rows(
        self, level: str, variant: str, pairs: list[tuple[str, str]], sizes: tuple[tuple[int, int], ...] | None = None
    ) -> list[Row]:
        """The rows of :meth:`level` for every direction in ``pairs``, with the worker implementations computing
        beside this process.

        Direction by direction, each worker would compute while this process waits, and the reverse. Here each
        worker implementation gets a thread (it waits on the worker's socket) that computes its results on its own
        weights, then takes the transfer from each framework of this process it is paired with and computes its
        results on that; meanwhile this process hands each worker the exports it needs (copies, taken in this
        thread), computes its own frameworks' results, and makes the transfers between its own frameworks. A
        thread uses only its own implementation's model, so nothing is shared but the matrix's locked caches.
        :meth:`level` then finds every result cached (a lossless transfer leaves the digest of the model's own
        weights) and makes only the transfers out of the workers. The rows and numbers are those of calling
        :meth:`level` for each pair; a failure is raised as it would raise.
        """
        self.compute([level], variant, pairs, sizes)
        return [r for pair in pairs for r in self.level(level, variant, pair, sizes)]

    def compute(
        self,
        levels: list[str],
        variant: str,
        pairs: list[tuple[str, str]],
        sizes: tuple[tuple[int, int], ...] | None = None,
    ) -> None:
        """The results of several levels for every direction in ``pairs``, computed as :meth:`rows` computes one
        level's: each worker implementation goes through all of them in one go, so this process need not wait at
        the end of each level for the slowest worker (on a first run, Keras on JAX compiling its train-mode
        program). :meth:`rows` then finds them cached. ``structure`` has nothing to compute here."""
        unknown = [level for level in levels if level not in LEVELS]
        if unknown:
            raise ValueError(f"unknown level(s) {unknown}: expected some of {list(LEVELS)}")
        v = self.variant(variant)
        each = {
            "eval": lambda fw, src: [self.probes(fw, variant, src, hw) for hw in (sizes or v.eval_sizes)],
            "train": lambda fw, src: self.probes(fw, variant, src, v.train_size, True),
            "gradients": lambda fw, src: self.gradients(fw, variant, src),
            **{
                o: lambda fw, src, o=o: (self.held(fw, variant, src), self.step(fw, variant, src, o))
                for o in OPTIMIZERS
            },
        }
        wanted = [each[level] for level in levels if level in each]
        usable = [p for p in pairs if all(self.unavailable(fw) is None for fw in p)]
        if wanted and usable:
            self._ahead(variant, usable, lambda fw, src: [result(fw, src) for result in wanted])

    def _ahead(self, variant: str, pairs: list[tuple[str, str]], results: Any) -> None:
        """:meth:`rows`' computation: ``results(fw, source)`` for every direction, the workers' in their threads."""
        fws = list(dict.fromkeys(fw for pair in pairs for fw in pair))
        remote = [fw for fw in fws if fw in frameworks.WORKERS]
        local = [fw for fw in fws if fw not in remote]
        partners = {w: list(dict.fromkeys(a for a, b in pairs if b == w and a in local)) for w in remote}
        handed: dict[str, Future] = {a: Future() for w in remote for a in partners[w]}
        self.canonical(variant)
        self.canonical(variant, DECOY_SEED)
        self._variant_models(variant)  # drops the previous variant's models before the threads start

        def worker_side(w: str) -> None:
            results(w, w)
            for a in partners[w]:
                handed[a].result()  # a's export is in self._handed: the transfer from a leaves a's model alone
                results(w, a)

        with ThreadPoolExecutor(max_workers=max(len(remote), 1)) as pool:
            pending = [pool.submit(worker_side, w) for w in remote]
            try:
                for a, ready in handed.items():  # first, so that the workers never wait long
                    exported = self.mod(a).export_weights(self._own(a, variant))
                    if (a, variant) not in self._export_keys:
                        self._remember_export(a, variant, exported)
                    # a copy (in the same memory layout, keyed as what the import receives): PyTorch's export is
                    # views of the live parameters, which this thread changes next
                    copied = {k: _copy(x) for k, x in exported.items()}
                    layouts = zip(copied.values(), exported.values())
                    same = all(getattr(c, "strides", None) == getattr(x, "strides", None) for c, x in layouts)
                    self._handed[a, variant] = (self._export_keys[a, variant] if same else _export_key(copied)), copied
                    ready.set_result(None)
                for fw in local:
                    results(fw, fw)
                for a, b in pairs:
                    if a in local and b in local:
                        results(b, a)
            finally:  # on a failure here, the threads end (without an export to wait for) before it is raised
                for ready in handed.values():
                    if not ready.done():
                        ready.set_exception(RuntimeError(f"{variant}: this process failed before exporting"))
                wait(pending)
                self._handed.clear()
        for done in pending:
            done.result()

    # ------------------------------------------------------------------ the levels
    def eval_forward(
        self, variant: str, pair: tuple[str, str], hw: tuple[int, int], *, tf32: bool = False
    ) -> compare.Comparison:
        a, b = pair
        cfg = self.variant(variant).config
        ref = self.probes(a, variant, a, hw, False, tf32)
        got = self.probes(b, variant, a, hw, False, tf32)
        mode = "eval forward, TF32 on" if tf32 else "eval forward"
        return compare.compare_probes(
            cfg, ref, got, tol=FORWARD_TOL, label=f"{mode} {variant} {hw[0]}x{hw[1]} on {self.device}: {_arrow(pair)}"
        )

    def train_forward(self, variant: str, pair: tuple[str, str]) -> compare.Comparison:
        a, b = pair
        v = self.variant(variant)
        cfg, hw = v.config, v.train_size
        ref = self.probes(a, variant, a, hw, True)
        got = self.probes(b, variant, a, hw, True)
        return compare.compare_probes(
            cfg,
            ref,
            got,
            tol=TRAIN_FORWARD_TOL,
            label=f"train-mode forward {variant} {hw[0]}x{hw[1]} on {self.device}: {_arrow(pair)}",
        )

    def gradient_parity(self, variant: str, pair: tuple[str, str]) -> compare.Comparison:
        a, b = pair
        cfg = self.variant(variant).config
        ref, got = self.gradients(a, variant, a), self.gradients(b, variant, a)
        total = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in ref.values()))
        names = [p.name for p in spec.param_specs(cfg) if p.trainable]
        return compare.compare_tensors(
            ref,
            got,
            tol=GRAD_TOL,
            names=names,
            floor=GRAD_FLOOR_REL * total,
            backward=True,
            label=f"gradients (float64) {variant} on {self.device}: {_arrow(pair)}",
        )

    def optimizer_parity(self, variant: str, pair: tuple[str, str], optimizer: str) -> compare.Comparison:
        a, b = pair
        cfg = self.variant(variant).config
        ref, got = self.increments(a, variant, a, optimizer), self.increments(b, variant, a, optimizer)
        hp = OPTIMIZERS[optimizer]
        return compare.compare_tensors(
            ref,
            got,
            tol=STEP_TOL,
            names=[p.name for p in spec.param_specs(cfg)],
            backward=True,
            label=f"{optimizer} x{hp['steps']} (float64, updates and BN statistics) {variant} "
            f"on {self.device}: {_arrow(pair)}",
        )

    def level(
        self, level: str, variant: str, pair: tuple[str, str], sizes: tuple[tuple[int, int], ...] | None = None
    ) -> list[Row]:
        """The rows of one level for a variant and direction (``eval``: one per size, default the variant's)."""
        for fw in pair:
            reason = self.unavailable(fw)
            if reason:
                return [Row(variant, pair, level, self.device, skipped=f"{frameworks.label(fw)}: {reason}")]
        if level == "eval":
            return [
                Row(variant, pair, level, self.device, self.eval_forward(variant, pair, hw), detail=f"{hw[0]}x{hw[1]}")
                for hw in (sizes or self.variant(variant).eval_sizes)
            ]
        hw = self.variant(variant).train_size
        detail = f"{hw[0]}x{hw[1]}"
        if level == "train":
            return [Row(variant, pair, level, self.device, self.train_forward(variant, pair), detail=detail)]
        if level == "gradients":
            return [Row(variant, pair, level, self.device, self.gradient_parity(variant, pair), detail=detail)]
        if level in OPTIMIZERS:
            return [Row(variant, pair, level, self.device, self.optimizer_parity(variant, pair, level), detail=detail)]
        raise ValueError(f"unknown level {level!r}: expected one of {list(LEVELS[1:])}")


def _arrow(pair: tuple[str, str]) -> str:
    """``a -> b`` with each implementation's label (the Keras backend that ran)."""
    return f"{frameworks.label(pair[0])} -> {frameworks.label(pair[1])}"


def _copy(a: Any) -> Any:
    """A copy of an exported array in the same memory layout (a transposed view stays transposed)."""
    return a.copy(order="K") if isinstance(a, np.ndarray) else a


def _hashes(weights: dict[str, Any]) -> tuple[str, str]:
    """``(export key, digest)`` of a weight dict, in one pass over its bytes (each array's bytes hashed once).

    The digest: names, shapes, dtypes and bytes (what a model holds). The export key: the same plus, per array, its
    type and memory layout, as an import receives it: two exports with one key are the same input to any
    ``import_weights``; one that differs only in layout (a transposed view where another export has a contiguous
    array) gets another key, so an import that mishandled strided arrays would still be caught in that direction."""
    key, digest = hashlib.sha1(), hashlib.sha1()
    for name, a in weights.items():
        dense = np.ascontiguousarray(a)
        data = hashlib.sha1(memoryview(dense).cast("B")).digest()  # in place: tobytes() would copy 45 MB
        layout = "C" if getattr(a, "flags", None) is not None and a.flags.c_contiguous else getattr(a, "strides", "?")
        key.update(f"{name}:{type(a).__module__}.{type(a).__qualname__}:{np.shape(a)}:{a.dtype}:{layout};".encode())
        key.update(data)
        digest.update(f"{name}:{dense.shape}:{dense.dtype};".encode())
        digest.update(data)
    return key.hexdigest(), digest.hexdigest()


def _digest(weights: dict[str, Any]) -> str:
    """A hash of a canonical weight dict: names, shapes, dtypes and bytes (:func:`_hashes`)."""
    return _hashes(weights)[1]


def _export_key(weights: dict[str, Any]) -> str:
    """A hash of an export as an import receives it (:func:`_hashes`)."""
    return _hashes(weights)[0]


def tf32_rows(matrix: Matrix, variants: list[str], pairs: list[tuple[str, str]]) -> list[Row]:
    """Eval forward on the GPU with TF32 left on, at each variant's reference size: figures, no verdict."""
    out = []
    for variant in variants:
        hw = matrix.variant(variant).reference_size
        for pair in pairs:
            reason = next((f"{frameworks.label(fw)}: {why}" for fw in pair if (why := matrix.unavailable(fw))), None)
            comparison = None if reason else matrix.eval_forward(variant, pair, hw, tf32=True)
            out.append(
                Row(
                    variant,
                    pair,
                    "eval-tf32",
                    matrix.device,
                    comparison,
                    skipped=reason,
                    detail=f"{hw[0]}x{hw[1]}",
                    figure=True,
                )
            )
    return out
