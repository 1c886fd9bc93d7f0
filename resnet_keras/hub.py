"""keras-hub's ResNet-18 weights file (``.weights.h5``), written by Keras from keras-hub's own graph.

A Keras 3 weights file addresses each variable by the layer's position among the model's
layers and a group name derived from its *class* (``layers/res_net_backbone/layers/conv2d_3``),
not by layer names. So the file keras-hub's ``load_weights`` takes is written here by
``save_weights`` on a model built the way keras-hub builds its own: classes named
``ResNetBackbone`` and ``ResNetImageClassifier`` (their snake-case names are the file's
groups), and the functional graph of ``keras_hub/src/models/resnet/resnet_backbone.py``
(``block_type="basic_block"``, ``use_pre_activation=False``) and ``image_classifier.py``
layer for layer, so Keras orders and names the layers as in keras-hub. keras-hub itself
need not be installed; ``parity_tests/test_keras_hub.py`` loads the file into the real one.

The names and layouts come from the core (:func:`resnet_core.porting.keras_hub.layer_arrays`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import keras
import numpy as np
from keras import layers

from resnet_core import spec
from resnet_core.atomic import atomic_path
from resnet_core.porting import keras_hub

OPTIMIZER_LEARNING_RATE = 5e-5  # keras_hub/src/models/image_classifier.py: compile(optimizer="auto")


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(axis=-1, epsilon=1e-5, momentum=0.9, name=name)


def _basic_block(x, filters: int, stride: int, conv_shortcut: bool, name: str):
    shortcut = x
    if conv_shortcut:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_0_conv")(x)
        shortcut = _bn(f"{name}_0_bn")(shortcut)
    if stride > 1:
        x = layers.ZeroPadding2D(1, name=f"{name}_1_pad")(x)
    x = layers.Conv2D(
        filters, 3, strides=stride, padding="valid" if stride > 1 else "same", use_bias=False, name=f"{name}_1_conv"
    )(x)
    x = _bn(f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.Conv2D(filters, 3, strides=1, padding="same", use_bias=False, name=f"{name}_2_conv")(x)
    x = _bn(f"{name}_2_bn")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


class ResNetBackbone(keras.Model):
    """keras-hub's ``ResNetBackbone(**keras_hub.BACKBONE_ARGS)``: the class name is the file's group name."""

    def __init__(self, in_channels: int = 3, **kwargs) -> None:
        args = keras_hub.BACKBONE_ARGS
        inputs = layers.Input(shape=(None, None, in_channels))
        x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
        x = layers.Conv2D(64, 7, strides=2, use_bias=False, padding="valid", name="conv1_conv")(x)
        x = _bn("conv1_bn")(x)
        x = layers.Activation("relu", name="conv1_relu")(x)
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
        stacks = zip(args["stackwise_num_filters"], args["stackwise_num_blocks"], args["stackwise_num_strides"])
        for s, (filters, blocks, stride) in enumerate(stacks):
            for b in range(blocks):
                # basic_block: the first stack keeps the identity shortcut (first_shortcut=False)
                x = _basic_block(
                    x, filters, stride if b == 0 else 1, conv_shortcut=b == 0 and s > 0, name=f"stack{s}_block{b}"
                )
        super().__init__(inputs=inputs, outputs=x, **kwargs)


class ResNetImageClassifier(keras.Model):
    """keras-hub's ``ResNetImageClassifier(backbone, num_classes)``: average pooling, dropout 0, ``predictions``.

    Compiled as keras-hub's ``Task`` compiles itself by default (``Adam(5e-5)``), so the file holds
    the same ``optimizer`` group (``iterations``, ``learning_rate``) as one keras-hub writes: loading
    it into a default keras-hub classifier warns of no optimizer mismatch.
    """

    def __init__(self, backbone: ResNetBackbone, num_classes: int, **kwargs) -> None:
        self.backbone = backbone
        self.pooler = layers.GlobalAveragePooling2D(name="pooler")
        self.output_dropout = layers.Dropout(0.0, name="output_dropout")
        self.output_dense = layers.Dense(num_classes, name="predictions")
        inputs = backbone.input
        x = self.output_dense(self.output_dropout(self.pooler(backbone(inputs))))
        super().__init__(inputs=inputs, outputs=x, **kwargs)
        self.compile(optimizer=keras.optimizers.Adam(OPTIMIZER_LEARNING_RATE))


def build(cfg: spec.Config, *, backbone: bool = False) -> keras.Model:
    """keras-hub's ResNet-18 for ``cfg`` (its classes, names and layer order), with fresh weights."""
    keras_hub.check_writable(cfg)
    net = ResNetBackbone(cfg.in_channels)
    return net if backbone else ResNetImageClassifier(net, cfg.num_classes)


def _layer(model: keras.Model, name: str) -> keras.layers.Layer:
    if isinstance(model, ResNetImageClassifier) and name != "predictions":
        return model.backbone.get_layer(name)
    return model.get_layer(name)


def save(
    path: str | os.PathLike,
    cfg: spec.Config,
    weights: Mapping[str, np.ndarray],
    *,
    backbone: bool = False,
    overwrite: bool = True,
) -> None:
    """Write canonical ``weights`` as keras-hub's ``.weights.h5`` (``backbone``: the ``ResNetBackbone``'s).

    ``model.load_weights(path)`` on keras-hub's ``ResNetImageClassifier`` (or ``ResNetBackbone``)
    built with ``BACKBONE_ARGS`` then takes every variable. Validated and assigned before the
    file is created; the write is atomic.
    """
    arrays = keras_hub.layer_arrays(cfg, weights, backbone=backbone)
    model = build(cfg, backbone=backbone)
    assigned = 0
    for layer_name, variables in arrays.items():
        layer = _layer(model, layer_name)
        for var, value in variables.items():
            getattr(layer, var).assign(value)
            assigned += 1
    if assigned != len(model.weights):  # every variable of the model comes from the weights, none is left fresh
        raise AssertionError(f"assigned {assigned} of the keras-hub model's {len(model.weights)} variables")
    with atomic_path(path, overwrite=overwrite, named=True) as tmp:
        model.save_weights(tmp)
