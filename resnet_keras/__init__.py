"""ResNet-18 and MiniModel in Keras 3, built from the one specification in :mod:`resnet_core`."""

from resnet_core.import_order import prepare_keras

prepare_keras()  # before keras/tensorflow: keeps a later `import paddle` from crashing

from .models import MiniModel, ResNet18, minimodel, resnet18  # noqa: E402
from .probes import probe_outputs  # noqa: E402
from .weights import config_of, export_weights, import_weights  # noqa: E402
from .io import load, save  # noqa: E402
from .training import gradients, optimizer_step  # noqa: E402

FRAMEWORK = "keras"


def build(model: str, **kwargs):
    """Build ``"resnet18"`` or ``"minimodel"`` from builder keyword arguments."""
    from resnet_core import spec

    spec.make_config(model, **kwargs)  # validates the options with the same message in every framework
    return resnet18(**kwargs) if model == "resnet18" else minimodel(**kwargs)


def count_params(model):
    """Trainable parameters and BN moving statistics (Keras' count_params() lumps them together)."""
    import math

    from resnet_core.spec import Counts

    trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
    stats = sum(math.prod(v.shape) for v in model.non_trainable_weights if v.path.endswith(("moving_mean", "moving_variance")))
    return Counts(trainable, stats)
