"""PyTorch's side of ``resnet-parity bench``: the :class:`~resnet_core.bench.plan.BenchAdapter` for torch.

The core (:mod:`resnet_core.bench`) decides what is timed and how; this module only knows how to
build, place and step a model in PyTorch. It is imported by a bench worker subprocess, never by the
parent, so thread settings made here (``torch.set_num_threads``) affect that one framework only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from resnet_core.bench.plan import LR, MOMENTUM, BenchAdapter, Unavailable

from . import build, import_weights


class TorchAdapter:
    """Settings ``eager``, ``channels_last`` and ``compile``; reference ``torchvision.models.resnet18``."""

    name = "torch"

    def __init__(self, threads: int, device: str, tf32: bool | None) -> None:
        self.threads, self.device, self.tf32 = threads, device, tf32
        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # already set, or parallel work started
            torch.set_num_interop_threads(1)
        self.dev = torch.device("cuda" if device == "gpu" else "cpu")
        if device == "gpu" and torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
            torch.backends.cudnn.allow_tf32 = bool(tf32)

    def meta(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
        }
        if self.device == "gpu" and torch.cuda.is_available():
            m.update(
                gpu=torch.cuda.get_device_name(0),
                cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version(),
                allow_tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                allow_tf32_cudnn=torch.backends.cudnn.allow_tf32,
            )
        return m

    def gpu_missing(self) -> str:
        return "" if torch.cuda.is_available() else f"torch {torch.__version__} sees no CUDA device"

    def sync(self) -> None:
        """CUDA kernels run asynchronously: a step is only over when the device says so."""
        if self.dev.type == "cuda":
            torch.cuda.synchronize()

    def ours(self, model: str, kwargs: dict[str, Any], weights: dict[str, np.ndarray]) -> Callable[[], Any]:
        def make() -> torch.nn.Module:
            m = build(model, **kwargs)
            import_weights(m, weights)
            return m.to(self.dev)

        return make

    def reference(self, model: str, kwargs: dict[str, Any], weights: dict[str, np.ndarray]) -> Callable[[], Any]:
        try:
            import torchvision
        except Exception as e:  # ImportError, or a RuntimeError when its build does not match torch's
            raise Unavailable(f"torchvision not installed/importable here ({type(e).__name__}: {str(e)[:120]})") from e
        state = self.ours(model, kwargs, weights)().state_dict()  # identical names to torchvision's

        def make() -> torch.nn.Module:
            m = torchvision.models.resnet18(weights=None, num_classes=kwargs["num_classes"])
            m.load_state_dict(state)
            return m.to(self.dev)

        return make

    def step(
        self, factory: Callable[[], Any], setting: str, mode: str, x: np.ndarray, y: np.ndarray
    ) -> Callable[[], Any]:
        model = factory()
        xt = torch.from_numpy(x).to(self.dev)
        yt = torch.from_numpy(y).long().to(self.dev)
        if setting == "channels_last":
            model = model.to(memory_format=torch.channels_last)
            xt = xt.contiguous(memory_format=torch.channels_last)
        fwd = torch.compile(model) if setting == "compile" else model
        if mode == "eval":
            model.eval()

            def run() -> torch.Tensor:
                with torch.no_grad():
                    out = fwd(xt)
                self.sync()
                return out

            return run
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

        def train() -> None:
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(fwd(xt), yt)
            loss.backward()
            opt.step()
            self.sync()

        return train

    def to_numpy(self, out: Any) -> np.ndarray:
        return out.detach().float().cpu().numpy()


def bench_adapter(threads: int, device: str, tf32: bool | None) -> BenchAdapter:
    """The torch adapter with ``threads`` intra-op threads on ``device`` (``cpu``/``gpu``); ``tf32`` on the GPU."""
    return TorchAdapter(threads, device, tf32)
