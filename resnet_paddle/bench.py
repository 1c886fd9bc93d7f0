"""Paddle's side of ``resnet-parity bench``: the :class:`~resnet_core.bench.plan.BenchAdapter` for PaddlePaddle.

Besides dygraph and ``paddle.jit.to_static``, Paddle's fast CPU path is its Inference API (IR passes
and oneDNN kernels), which needs the model exported with ``paddle.jit.save``: the adapter exports
into a temporary folder that is removed when the worker exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import paddle

from resnet_core.bench.plan import LR, MOMENTUM, BenchAdapter

from . import build, import_weights


class PaddleAdapter:
    """Settings ``eager``, ``to_static`` and ``inference`` (eval only); reference ``paddle.vision.models.resnet18``."""

    name = "paddle"

    def __init__(self, threads: int, device: str, tf32: bool | None) -> None:
        self.threads, self.device, self.tf32 = threads, device, tf32
        set_threads = getattr(paddle.base.core, "set_num_threads", None)
        if set_threads is not None:  # the math library's threads; oneDNN follows OMP_NUM_THREADS (set in the env)
            set_threads(threads)
        self.gpu = device == "gpu" and paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
        paddle.set_device("gpu" if self.gpu else "cpu")
        self._tmp = tempfile.mkdtemp(prefix="resnet-bench-paddle-")  # exported models for the predictor
        atexit.register(shutil.rmtree, self._tmp, ignore_errors=True)

    def meta(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "paddle": paddle.__version__,
            "paddle_device": paddle.device.get_device(),
            "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        }
        if self.gpu:
            m["gpu"] = paddle.device.cuda.get_device_name(0)
        return m

    def gpu_missing(self) -> str:
        if self.gpu:
            return ""
        if not paddle.device.is_compiled_with_cuda():
            return f"paddlepaddle {paddle.__version__} is a CPU build (the GPU needs paddlepaddle-gpu)"
        return "Paddle sees no CUDA device"

    def sync(self) -> None:
        """GPU kernels run asynchronously: a step is only over when the device says so."""
        if self.gpu:
            paddle.device.synchronize()

    def ours(self, model: str, kwargs: dict[str, Any], weights: dict[str, np.ndarray]) -> Callable[[], Any]:
        def make() -> paddle.nn.Layer:
            m = build(model, **kwargs)
            import_weights(m, weights)
            return m

        return make

    def reference(self, model: str, kwargs: dict[str, Any], weights: dict[str, np.ndarray]) -> Callable[[], Any]:
        from paddle.vision.models import resnet18

        state = self.ours(model, kwargs, weights)().state_dict()  # paddle.vision uses the same attribute names

        def make() -> paddle.nn.Layer:
            m = resnet18(num_classes=kwargs["num_classes"])  # pretrained=False: built locally, nothing downloaded
            missing, unexpected = m.set_state_dict(state)
            if missing or unexpected:
                raise RuntimeError(
                    f"paddle.vision resnet18 names differ: missing {missing[:3]}, unexpected {unexpected[:3]}"
                )
            return m

        return make

    def step(
        self, factory: Callable[[], Any], setting: str, mode: str, x: np.ndarray, y: np.ndarray
    ) -> Callable[[], Any]:
        model = factory()
        if setting == "inference":
            return self._predictor(model, x)
        xt, yt = paddle.to_tensor(x), paddle.to_tensor(y.astype(np.int64))
        fwd = paddle.jit.to_static(model) if setting == "to_static" else model
        if mode == "eval":
            model.eval()

            def run() -> paddle.Tensor:
                with paddle.no_grad():
                    out = fwd(xt)
                self.sync()
                return out

            return run
        model.train()
        opt = paddle.optimizer.Momentum(learning_rate=LR, momentum=MOMENTUM, parameters=model.parameters())

        def train() -> None:
            loss = paddle.nn.functional.cross_entropy(fwd(xt), yt)
            loss.backward()
            opt.step()
            opt.clear_grad()
            self.sync()

        return train

    def _predictor(self, model: paddle.nn.Layer, x: np.ndarray) -> Callable[[], Any]:
        """Export ``model`` and run it through the Inference API's predictor (eval only, host to host)."""
        from paddle import inference

        model.eval()
        prefix = os.path.join(tempfile.mkdtemp(dir=self._tmp), "model")
        paddle.jit.save(model, prefix, input_spec=[paddle.static.InputSpec([None, *x.shape[1:]], "float32", "x")])
        model_file = next(prefix + ext for ext in (".json", ".pdmodel") if os.path.exists(prefix + ext))
        cfg = inference.Config(model_file, prefix + ".pdiparams")
        if self.gpu:
            cfg.enable_use_gpu(256, 0)
        else:
            cfg.disable_gpu()
            (getattr(cfg, "enable_onednn", None) or cfg.enable_mkldnn)()
            cfg.set_cpu_math_library_num_threads(self.threads)
        cfg.switch_ir_optim(True)
        cfg.disable_glog_info()
        pred = inference.create_predictor(cfg)
        inp = pred.get_input_handle(pred.get_input_names()[0])
        out = pred.get_output_handle(pred.get_output_names()[0])

        def run() -> np.ndarray:  # the predictor's own API: host in, host out
            inp.copy_from_cpu(x)
            pred.run()
            return out.copy_to_cpu()

        return run

    def to_numpy(self, out: Any) -> np.ndarray:
        return out if isinstance(out, np.ndarray) else out.numpy()


def bench_adapter(threads: int, device: str, tf32: bool | None) -> BenchAdapter:
    """The Paddle adapter; TF32 is set through ``FLAGS_allow_tf32_*`` in the worker's environment, not here."""
    return PaddleAdapter(threads, device, tf32)
