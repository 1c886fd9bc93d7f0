"""keras-hub's ResNet-18: the arguments it is built with, and canonical weights under its layer names.

keras-hub's ``ResNetBackbone`` with :data:`BACKBONE_ARGS` is torchvision's ResNet-18 layer for
layer (explicit ``ZeroPadding2D`` + ``valid`` convs where torch pads symmetrically; BN epsilon
1e-5); ``ResNetImageClassifier`` adds ``GlobalAveragePooling2D`` and the Dense ``predictions``.
The names are the ``keras-hub`` / ``keras-hub-backbone`` schemes of :mod:`.schemes`.

A Keras 3 ``.weights.h5`` file is addressed by layer *order* and class-derived group names
(``layers/res_net_backbone/layers/conv2d_3/vars/0``), not by layer names, so the file is
written by Keras itself from a model with keras-hub's classes and graph: that is
``resnet_keras.hub``, which takes the per-layer arrays from :func:`layer_arrays` (the core
imports no framework).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from .. import names, spec
from . import schemes
from .formats import ConvertError

#: ``keras_hub.models.ResNetBackbone(**BACKBONE_ARGS, image_shape=(None, None, C))`` is a ResNet-18.
BACKBONE_ARGS = {
    "input_conv_filters": [64],
    "input_conv_kernel_sizes": [7],
    "stackwise_num_filters": [64, 128, 256, 512],
    "stackwise_num_blocks": [2, 2, 2, 2],
    "stackwise_num_strides": [1, 2, 2, 2],
    "block_type": "basic_block",
    "use_pre_activation": False,
}
TESTED_WITH = "keras-hub 0.32.0"


def check_writable(cfg: spec.Config) -> None:
    """keras-hub's ResNet-18 has the ImageNet stem, bias-free convs and BN on the shortcut: refuse others."""
    want = {"stem": "imagenet", "conv_bias": False, "shortcut_bias": False, "shortcut_bn": True}
    got = cfg.to_dict()
    if cfg.model != "resnet18" or any(got.get(k) != v for k, v in want.items()):
        raise ConvertError(
            f"a keras-hub ResNet-18 is a resnet18 with {', '.join(f'{k}={v!r}' for k, v in want.items())}; "
            f"these weights are a {cfg.model} {json.dumps(got)}"
        )


def layer_arrays(
    cfg: spec.Config, weights: Mapping[str, np.ndarray], *, backbone: bool = False
) -> dict[str, dict[str, np.ndarray]]:
    """``{keras-hub layer name: {variable: array in Keras' layout}}`` for ``cfg``'s canonical ``weights``.

    ``backbone``: the ``ResNetBackbone`` alone (the classifier ``predictions`` left out).
    """
    check_writable(cfg)
    scheme = schemes.get("keras-hub-backbone" if backbone else "keras-hub")
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, p in schemes.expected_names(scheme, cfg).items():
        layer, variable = name.split("/")
        out.setdefault(layer, {})[variable] = names.to_framework("keras", p.role, np.asarray(weights[p.name]))
    return out
