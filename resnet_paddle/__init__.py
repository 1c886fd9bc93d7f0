"""ResNet-18 and MiniModel in PaddlePaddle, built from the one specification in :mod:`resnet_core`."""

from resnet_core.import_order import prepare_paddle

prepare_paddle()  # before paddle: refuses clearly where TensorFlow was imported first (libpaddle would crash)

from .models import BasicBlock, MiniModel, ResNet18, Unit, minimodel, resnet18  # noqa: E402
from .probes import probe_outputs  # noqa: E402
from .weights import config_of, export_weights, import_weights  # noqa: E402
from .io import load, save  # noqa: E402
from .training import gradients, optimizer_step  # noqa: E402

FRAMEWORK = "paddle"


def build(model: str, **kwargs):
    """Build ``"resnet18"`` or ``"minimodel"`` from builder keyword arguments."""
    from resnet_core import spec

    cfg = spec.make_config(model, **kwargs)
    return ResNet18(cfg) if model == "resnet18" else MiniModel(cfg)


def count_params(model):
    """Trainable parameters and BN statistics (Paddle's parameters() also lists BN _mean/_variance)."""
    import math

    from resnet_core.spec import Counts

    trainable = sum(math.prod(p.shape) for p in model.parameters() if p.trainable)
    stats = sum(math.prod(v.shape) for n, v in model.state_dict().items() if n.endswith(("._mean", "._variance")))
    return Counts(trainable, stats)
