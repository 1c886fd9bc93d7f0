"""What differs between Keras 3's backends, in one place: gradients, GPU presence, TF32, placement.

Keras fixes its backend per process (``KERAS_BACKEND`` before ``import keras``). Everything else in
this package is written with ``keras.*`` only; the few things Keras has no portable API for are
here, one small class per backend, chosen once by :func:`current`:

- gradients: a ``tf.GradientTape`` on TensorFlow, ``jax.value_and_grad`` over ``stateless_call`` on
  JAX (compiled with ``jax.jit``), torch autograd on PyTorch -- behind :func:`gradient_function`;
- optimizer steps: ``apply_gradients`` on TensorFlow and PyTorch, ``stateless_apply`` compiled with
  ``jax.jit`` on JAX (as Keras' own JAX trainer runs it) -- behind :func:`optimizer_function`;
- a forward pass: an eager call on TensorFlow and PyTorch, ``stateless_call`` compiled with ``jax.jit`` on JAX
  (as Keras' own ``predict`` runs it) -- behind :func:`forward_function`;
- whether a GPU is usable, and why not;
- TF32 (TensorFloat-32 matmuls/convolutions on Ampere and later GPUs) on or off;
- placement on the CPU or the GPU, with the determinism settings each backend offers.

A backend's library is imported only when that backend is the one Keras runs on, so Keras on JAX
needs no TensorFlow, and Keras on PyTorch neither.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import keras

Loss = Callable[[Any, Any], Any]  # (outputs, targets) -> scalar
GradientFunction = Callable[[Any, Any], tuple[Any, Any, list]]  # (inputs, targets) -> (loss, outputs, gradients)
OptimizerFunction = Callable[[list], None]  # gradients -> None (the variables and the optimizer's state updated)
# (model, inputs) -> outputs, in training mode with BN's moving statistics updated; for any model of one architecture
ForwardFunction = Callable[[keras.Model, Any], Any]


def _eager_forward_function(training: bool) -> ForwardFunction:
    return lambda model, inputs: model(inputs, training=training)


def _eager_optimizer_function(optimizer: keras.Optimizer, variables: Sequence, l2: float) -> OptimizerFunction:
    def run(grads: list) -> None:
        if l2:
            grads = [g + l2 * v.value for g, v in zip(grads, variables)]
        optimizer.apply_gradients(zip(grads, variables))

    return run


class TensorFlowBackend:
    name = "tensorflow"

    def gradient_function(self, model: keras.Model, loss: Loss, variables: Sequence) -> GradientFunction:
        import tensorflow as tf

        def run(inputs: Any, targets: Any) -> tuple:
            with tf.GradientTape() as tape:
                out = model(inputs, training=True)
                value = loss(out, targets)
            return value, out, tape.gradient(value, list(variables))

        return run

    def optimizer_function(self, optimizer: keras.Optimizer, variables: Sequence, l2: float) -> OptimizerFunction:
        return _eager_optimizer_function(optimizer, variables, l2)

    def forward_function(self, training: bool) -> ForwardFunction:
        return _eager_forward_function(training)

    def gpu_unavailable_reason(self) -> str | None:
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            built = "built with CUDA" if tf.test.is_built_with_cuda() else "a CPU-only build"
            return f"TensorFlow sees no GPU ({built})"
        return None

    def tf32_enabled(self) -> bool:
        import tensorflow as tf

        return bool(tf.config.experimental.tensor_float_32_execution_enabled())

    @contextmanager
    def tf32(self, enabled: bool) -> Iterator[None]:
        import tensorflow as tf

        saved = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(enabled)
        try:
            yield
        finally:
            tf.config.experimental.enable_tensor_float_32_execution(saved)

    @contextmanager
    def placed(self, model: keras.Model, device: str) -> Iterator[keras.Model]:
        import tensorflow as tf

        # TF places each op where its inputs are, a visible GPU first, whatever device the variables were
        # made on; a device scope decides. GPU determinism is not switched on here (tensorflow-cpu has no GPU;
        # with a CUDA build, tf.config.experimental.enable_op_determinism() would be the switch).
        with tf.device("/GPU:0" if device == "gpu" else "/CPU:0"):
            yield model


class JaxBackend:
    name = "jax"

    def gradient_function(self, model: keras.Model, loss: Loss, variables: Sequence) -> GradientFunction:
        import jax

        trainable, non_trainable = model.trainable_variables, model.non_trainable_variables
        index = {id(v): i for i, v in enumerate(trainable)}
        picks = [index[id(v)] for v in variables]

        def f(tv, ntv, inputs, targets):
            out, ntv = model.stateless_call(tv, ntv, inputs, training=True)
            return loss(out, targets), (out, ntv)

        # One XLA program for the forward and backward pass, traced at the first call (so under the caller's
        # settings, dropout off) and compiled once per input shape. Run eagerly, JAX compiles each of the
        # hundreds of ops on its own: the first float64 MiniModel gradient took 14 s that way, 4 s compiled.
        compiled = jax.jit(jax.value_and_grad(f, has_aux=True))

        def run(inputs: Any, targets: Any) -> tuple:
            (value, (out, updated)), grads = compiled(
                [v.value for v in trainable], [v.value for v in non_trainable], inputs, targets
            )
            for v, a in zip(non_trainable, updated):  # BN moving statistics, as a stateful call leaves them
                v.assign(a)
            return value, out, [grads[i] for i in picks]

        return run

    def optimizer_function(self, optimizer: keras.Optimizer, variables: Sequence, l2: float) -> OptimizerFunction:
        import jax

        if not optimizer.built:
            optimizer.build(list(variables))
        state = optimizer.variables

        def step(opt_values, grads, values):
            if l2:
                grads = [g + l2 * w for g, w in zip(grads, values)]
            return optimizer.stateless_apply(opt_values, grads, values)

        # One XLA program per step, as Keras' JAX trainer compiles it; run eagerly, each update op of each
        # variable shape was a program of its own (cold: 19.2 s -> 12.2 s for SGD and Adam on ResNet-18 and
        # MiniModel, measured). Traced at the first call: the optimizer's Python attributes are read then.
        compiled = jax.jit(step)

        def run(grads: list) -> None:
            values, opt_values = compiled([v.value for v in state], list(grads), [v.value for v in variables])
            for v, a in zip(variables, values):
                v.assign(a)
            for v, a in zip(state, opt_values):
                v.assign(a)

        return run

    def forward_function(self, training: bool) -> ForwardFunction:
        import jax

        calling = threading.local()  # the model being run, read when jax.jit traces

        # One XLA program per input shape, as Keras' own predict compiles it. Run eagerly, JAX compiles each op of
        # each shape on its own the first time (the first eval of a ResNet-18 is then mostly compiling). Traced at
        # the first call, with that model's layer attributes (a BN epsilon, a dropout rate); reused, untraced, for
        # every later model whose variables have the same shapes and dtypes.
        compiled = jax.jit(lambda tv, ntv, inputs: calling.model.stateless_call(tv, ntv, inputs, training=training))

        def run(model: keras.Model, inputs: Any) -> Any:
            non_trainable = model.non_trainable_variables
            calling.model = model
            try:
                out, updated = compiled(
                    [v.value for v in model.trainable_variables], [v.value for v in non_trainable], inputs
                )
            finally:
                calling.model = None
            if training:
                for v, a in zip(non_trainable, updated):  # BN moving statistics, as a stateful call leaves them
                    v.assign(a)
            return out

        return run

    def gpu_unavailable_reason(self) -> str | None:
        import jax

        try:
            jax.devices("gpu")
        except RuntimeError:
            platforms = ", ".join(sorted({d.platform for d in jax.devices()}))
            return f"JAX sees no GPU (jaxlib {jax.__version__}: {platforms} only)"
        return None

    def tf32_enabled(self) -> bool:
        import jax

        # None ("default") is TF32 on Ampere and later GPUs
        return jax.config.jax_default_matmul_precision in (None, "default", "tensorfloat32", "bfloat16_3x")

    @contextmanager
    def tf32(self, enabled: bool) -> Iterator[None]:
        import jax

        # JAX's float32 matmuls and convolutions on a GPU run at the "default" precision, which is TF32 on
        # Ampere and later; "highest" is full float32.
        saved = jax.config.jax_default_matmul_precision
        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if enabled else "highest")
        try:
            yield
        finally:
            jax.config.update("jax_default_matmul_precision", saved)

    def _device(self, device: str):
        import jax

        return jax.devices("gpu" if device == "gpu" else "cpu")[0]

    @contextmanager
    def placed(self, model: keras.Model, device: str) -> Iterator[keras.Model]:
        import jax

        # Arrays stay where they were made; a model made elsewhere is moved, variable by variable.
        # Determinism on the GPU: XLA_FLAGS=--xla_gpu_deterministic_ops=true before jax loads.
        dev = self._device(device)
        for v in model.variables:
            if dev not in v.value.devices():
                v.assign(jax.device_put(v.value, dev))
        with jax.default_device(dev):
            yield model


class TorchBackend:
    name = "torch"

    def gradient_function(self, model: keras.Model, loss: Loss, variables: Sequence) -> GradientFunction:
        import torch

        def run(inputs: Any, targets: Any) -> tuple:
            out = model(inputs, training=True)
            value = loss(out, targets)
            return value, out.detach(), list(torch.autograd.grad(value, [v.value for v in variables]))

        return run

    def optimizer_function(self, optimizer: keras.Optimizer, variables: Sequence, l2: float) -> OptimizerFunction:
        return _eager_optimizer_function(optimizer, variables, l2)

    def forward_function(self, training: bool) -> ForwardFunction:
        return _eager_forward_function(training)

    def gpu_unavailable_reason(self) -> str | None:
        import torch

        if not torch.cuda.is_available():
            cuda = torch.version.cuda
            build = "a CPU-only build" if cuda is None else f"CUDA {cuda}, no device visible"
            return f"PyTorch (Keras' torch backend) sees no CUDA GPU ({build})"
        return None

    # torch's own switches, the new fp32_precision API where it exists: one place, resnet_torch/device.py
    def tf32_enabled(self) -> bool:
        from resnet_torch.device import tf32_enabled

        return tf32_enabled()

    def tf32(self, enabled: bool) -> AbstractContextManager[None]:
        from resnet_torch.device import tf32

        return tf32(enabled)

    @contextmanager
    def placed(self, model: keras.Model, device: str) -> Iterator[keras.Model]:
        import torch

        target = torch.device("cuda" if device == "gpu" else "cpu")
        for v in model.variables:
            if v.value.device != target:
                v.value.data = v.value.data.to(target)
        saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
        # cuDNN: deterministic kernels, no autotuning (it may pick a different algorithm run to run).
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        try:
            with keras.device("cuda" if device == "gpu" else "cpu"):
                yield model
        finally:
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


BACKENDS = {b.name: b for b in (TensorFlowBackend(), JaxBackend(), TorchBackend())}


def current() -> TensorFlowBackend | JaxBackend | TorchBackend:
    """The backend Keras runs on in this process."""
    name = keras.backend.backend()
    if name not in BACKENDS:
        raise RuntimeError(f"Keras runs on the {name!r} backend; these models support {sorted(BACKENDS)}")
    return BACKENDS[name]


def gradient_function(model: keras.Model, loss: Loss, variables: Sequence) -> GradientFunction:
    """A function of ``(inputs, targets)`` that returns ``loss(model(inputs, training=True), targets)``, the
    model's output, and the loss' gradients w.r.t. ``variables``.

    Through the backend's own automatic differentiation; after each call the model's non-trainable
    variables (BN moving statistics) are as a stateful training call leaves them, on every backend. Make
    it once and call it for every step: on JAX it is compiled at its first call, with the model's settings
    of that moment (a dropout rate changed afterwards is not seen).
    """
    return current().gradient_function(model, loss, variables)


def optimizer_function(
    optimizer: keras.Optimizer, variables: Sequence, l2: float = 0.0, *, traced: bool = True
) -> OptimizerFunction:
    """A function of gradients (one per variable of ``variables``, in order) that makes one step of ``optimizer``.

    ``l2`` > 0 adds ``l2 * w`` to each gradient first (L2 decay as PyTorch and Paddle apply it). Through the
    backend's own way of running an optimizer: ``apply_gradients`` on TensorFlow and PyTorch, ``stateless_apply``
    compiled with ``jax.jit`` on JAX. Make it once per optimizer: on JAX it is compiled at its first call, so an
    attribute of ``optimizer`` changed afterwards (an epsilon set per step) is not seen; ``traced=False`` applies
    the gradients eagerly on every backend, for an optimizer whose attributes change between steps.
    """
    if not traced:
        return _eager_optimizer_function(optimizer, variables, l2)
    return current().optimizer_function(optimizer, variables, l2)


def forward_function(*, training: bool = False) -> ForwardFunction:
    """A function of ``(model, inputs)`` that returns ``model(inputs, training=training)``, the backend's own way.

    An eager call on TensorFlow and PyTorch; ``stateless_call`` compiled with ``jax.jit`` on JAX, with the
    model's non-trainable variables (BN moving statistics) afterwards as a stateful call leaves them. On JAX it
    is traced at its first call with that model's layers, and every later call whose variables and inputs have
    the same shapes and dtypes runs that program: call it only with models of one architecture and identical
    layer settings (an epsilon or a dropout rate changed in place is not seen: make a new one).
    """
    return current().forward_function(training)


def _promotion_table() -> dict[str, str]:
    from keras.src.backend.common import dtypes

    return dtypes.BIT64_TO_BIT32_DTYPE


def keep_float64() -> None:
    """Make Keras' type promotion keep float64 on JAX and PyTorch, for this process.

    Keras' own promotion (``keras.backend.result_type``) maps float64 to float32 on every backend but
    TensorFlow, through the table ``keras.src.backend.common.dtypes.BIT64_TO_BIT32_DTYPE``: a float64
    model's BatchNormalization (which computes in ``result_type(x.dtype, "float32")``), ``ops.mean`` and,
    on PyTorch, ``Dense`` then run in float32 (catalog: "float64 promotion"). This sets that entry to
    float64, as TensorFlow has it; float32 models are unaffected. It changes a private Keras table for
    the whole process, so it is never done behind a user's back: the parity matrix's worker processes
    call it; :func:`resnet_keras.device.cast_model` refuses float64 on these backends until it was called.
    """
    _promotion_table()["float64"] = "float64"


def x64_unavailable_reason() -> str | None:
    """Why float64 would not be computed as float64 on this backend, or ``None``."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return None
    if backend == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            return (
                "JAX computes float64 as float32 unless x64 is enabled: set JAX_ENABLE_X64=1 before jax is imported "
                f"(it is {os.environ.get('JAX_ENABLE_X64', 'unset')!r} here)"
            )
    if _promotion_table().get("float64") != "float64":
        return (
            f"Keras' type promotion maps float64 to float32 on the {backend} backend, so a float64 model's "
            "BatchNormalization would compute in float32; call resnet_keras.backends.keep_float64() first "
            "(it changes that Keras table for this process)"
        )
    return None
