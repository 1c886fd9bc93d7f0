"""ResNet-18 and MiniModel in PyTorch, built from the one specification in :mod:`resnet_core`."""

from .models import BasicBlock, MiniModel, ResNet18, Unit, minimodel, resnet18
from .probes import probe_outputs
from .weights import config_of, export_weights, import_weights
from .io import load, save  # noqa: E402
from .training import gradients, optimizer_step  # noqa: E402

FRAMEWORK = "torch"


def build(model: str, **kwargs):
    """Build ``"resnet18"`` or ``"minimodel"`` from builder keyword arguments."""
    from resnet_core import spec

    cfg = spec.make_config(model, **kwargs)
    return ResNet18(cfg) if model == "resnet18" else MiniModel(cfg)


def count_params(model):
    """Trainable parameters and BN statistics, excluding PyTorch's num_batches_tracked."""
    from resnet_core.spec import Counts

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return Counts(trainable, stats)
