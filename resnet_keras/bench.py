"""Keras' side of ``resnet-parity bench``: the :class:`~resnet_core.bench.plan.BenchAdapter` for Keras 3.

One adapter serves two bench frameworks: ``keras`` (Keras on TensorFlow) and ``keras-torch`` (Keras
on its torch backend, which the bench adds on GPU machines where TensorFlow sees no GPU). Keras fixes
its backend when it is first imported, from ``KERAS_BACKEND``, so the backend cannot be chosen here:
the bench worker's environment sets it (:func:`resnet_core.bench.runner.worker_env`) and
:func:`bench_adapter`'s ``backend`` argument only checks that Keras loaded the expected one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from resnet_core.bench.plan import LR, MOMENTUM, REFERENCES, BenchAdapter, Unavailable, one_line

from . import build, import_weights


class KerasAdapter:
    """Settings ``eager``/``graph``/``xla`` (TensorFlow) or ``eager``/``default`` (torch); no reference model."""

    name = "keras"

    def __init__(self, threads: int, device: str, tf32: bool | None) -> None:
        self.threads, self.device, self.tf32 = threads, device, tf32
        self.backend = keras.backend.backend()
        if self.backend == "tensorflow":
            import tensorflow as tf

            self.tf = tf
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            if tf32 is not None:
                tf.config.experimental.enable_tensor_float_32_execution(bool(tf32))
        elif self.backend == "torch":
            import torch

            self.torch = torch
            torch.set_num_threads(threads)
            if tf32 is not None:
                torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(tf32)

    def meta(self) -> dict[str, Any]:
        m: dict[str, Any] = {"keras": keras.__version__, "keras_backend": self.backend}
        if self.backend == "tensorflow":
            tf = self.tf
            m.update(
                tensorflow=tf.__version__,
                tf_intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
                tf_inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
                tf_gpus=[d.name for d in tf.config.list_physical_devices("GPU")],
            )
        else:
            m.update(torch=self.torch.__version__, torch_threads=self.torch.get_num_threads())
        # What compile()'s default jit_compile="auto" resolves to here.
        try:
            probe = build("minimodel", softmax=False)
            probe.compile(optimizer="sgd", loss="mse")
            m["keras_default_jit_compile"] = bool(probe.jit_compile)
        except Exception as e:  # the timed builds report it again, per setting
            m["keras_default_jit_compile"] = f"unknown: {one_line(e)}"
        return m

    def gpu_missing(self) -> str:
        if self.backend == "tensorflow":
            if self.tf.config.list_physical_devices("GPU"):
                return ""
            return f"TensorFlow {self.tf.__version__} sees no GPU (a CPU-only build such as tensorflow-cpu, or no CUDA)"
        return "" if self.torch.cuda.is_available() else "Keras' torch backend sees no CUDA device"

    def sync(self) -> None:
        """Nothing to wait for: ``predict_on_batch`` and ``train_on_batch`` return host values."""

    def ours(self, model: str, kwargs: dict[str, Any], weights: dict[str, np.ndarray]) -> Callable[[], Any]:
        def make() -> keras.Model:
            m = build(model, **kwargs)
            import_weights(m, weights)
            return m

        return make

    def reference(self, model: str, kwargs: dict[str, Any], weights: dict[str, np.ndarray]) -> Callable[[], Any]:
        raise Unavailable(REFERENCES["keras"][1])

    def step(
        self, factory: Callable[[], Any], setting: str, mode: str, x: np.ndarray, y: np.ndarray
    ) -> Callable[[], Any]:
        model = factory()
        model.compile(
            optimizer=keras.optimizers.SGD(LR, momentum=MOMENTUM),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            run_eagerly=setting == "eager",
            jit_compile=setting == "xla" if setting != "default" else "auto",
        )
        xt = keras.ops.convert_to_tensor(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))  # NHWC, on the default device
        yt = keras.ops.convert_to_tensor(y.astype(np.int32))
        if mode == "eval":
            return lambda: model.predict_on_batch(xt)  # returns numpy: the step has finished
        return lambda: model.train_on_batch(xt, yt)

    def to_numpy(self, out: Any) -> np.ndarray:
        return np.asarray(out)


def bench_adapter(threads: int, device: str, tf32: bool | None, backend: str | None = None) -> BenchAdapter:
    """The Keras adapter on the backend Keras loaded; ``backend`` (``tensorflow``/``torch``) asserts which.

    The bench calls it with ``backend="torch"`` for ``keras-torch`` and without for ``keras``.
    """
    loaded = keras.backend.backend()
    if backend is not None and loaded != backend:
        raise RuntimeError(
            f"Keras loaded its {loaded!r} backend, not {backend!r}: "
            f"set KERAS_BACKEND={backend} before Keras is imported"
        )
    return KerasAdapter(threads, device, tf32)
