"""ResNet-18 and MiniModel in Keras 3, built from the one specification in :mod:`resnet_core`.

The package provides :class:`resnet_core.frameworks.FrameworkPackage` at its top level:

- ``models``: the networks, ``build``; read it side by side with the other frameworks' ``models.py``
- ``weights``: canonical weights in and out (``export_weights``/``import_weights``), ``config_of``, ``count_params``
- ``probes``: the output of every probe point
- ``training``: gradients and optimizer steps
- ``device``: dtype copies, CPU/GPU placement, TF32
- ``backends``: what differs between Keras' backends (gradients, GPU, TF32, placement)
- ``io``: ``load``/``save`` of any supported weights file
- ``hub``: keras-hub's ResNet-18 rebuilt to write its ``.weights.h5`` (``resnet-parity convert --to keras-hub``)
"""

from resnet_core.runtime import prepare_keras, quiet_start_up

prepare_keras()  # before keras/tensorflow: the process environment, and a later `import paddle` made safe
with quiet_start_up("keras"):  # TensorFlow's start-up lines that no variable silences (runtime.NOISE)
    import keras  # loads its backend's library: tensorflow, jax or torch

from .device import cast_model, gpu_unavailable_reason, on_device, tf32, tf32_enabled  # noqa: E402
from .io import load, save  # noqa: E402
from .models import MiniModel, ResNet18, build, minimodel, resnet18  # noqa: E402
from .probes import probe_outputs  # noqa: E402
from .recipes import make_trainer  # noqa: E402
from .training import gradients, optimizer_step  # noqa: E402
from .weights import config_of, count_params, export_weights, import_weights  # noqa: E402

FRAMEWORK = "keras"
BACKEND = keras.backend.backend()  # fixed per process (KERAS_BACKEND)

__all__ = [
    "BACKEND", "FRAMEWORK", "MiniModel", "ResNet18", "build", "cast_model", "config_of", "count_params",
    "export_weights", "gpu_unavailable_reason", "gradients", "import_weights", "load", "make_trainer", "minimodel",
    "on_device", "optimizer_step", "probe_outputs", "resnet18", "save", "tf32", "tf32_enabled",
]  # fmt: skip
