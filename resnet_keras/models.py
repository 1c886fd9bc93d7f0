"""ResNet-18 and MiniModel in Keras 3, built from :mod:`resnet_core.spec`.

Read side by side with ``resnet_torch/models.py`` and ``resnet_paddle/models.py``:
the same blocks, the same names, in the same order. Functional API, every layer
named after its canonical module by :func:`resnet_core.names.keras_layer` (``layer1.0.bn1`` ->
``layer1_0_bn1``: Keras' torch backend refuses dots), only ``keras.layers``/``keras.ops`` (no
``tf.*``), so they run on every Keras backend (TensorFlow, JAX, PyTorch). Input is NHWC.
``model.config`` is the spec config, as on the PyTorch and Paddle models.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

import keras
import numpy as np
from keras import layers

from resnet_core import spec
from resnet_core.names import keras_layer as _k


class _HostZeros(keras.initializers.Initializer):
    """Zeros made by numpy and handed to the backend as they are. Keras' own initializers are programs on JAX,
    compiled once per shape: its random ``glorot_uniform`` about 0.3 s each (4.5 s for a first ResNet-18), and even
    ``zeros``/``ones`` took 0.6 s of the 1.7 s that building the five variants took (measured)."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        return np.zeros(shape, keras.backend.standardize_dtype(dtype))


# Every spatial layer says its layout: left to Keras, it is the user's ``image_data_format`` (keras.json), and
# "channels_first" there made the MiniModel fail to build and would transpose what the layers read.
NHWC = "channels_last"

# Inside zero_variables(): every variable starts at host zeros (none of them is read before it is replaced).
_ZEROS: ContextVar[bool] = ContextVar("resnet_keras_zero_variables", default=False)


def _init(*slots: str) -> dict[str, Any]:
    """A layer's ``<slot>_initializer`` arguments: none (Keras' defaults), or host zeros inside zero_variables()."""
    return {f"{slot}_initializer": _HostZeros() for slot in slots} if _ZEROS.get() else {}


def _bn(name: str, bn: spec.BatchNormSpec) -> layers.BatchNormalization:
    # Keras' momentum is the weight of the *old* running value: PyTorch 0.1 is Keras 0.9.
    return layers.BatchNormalization(
        axis=-1,
        momentum=bn.keras_paddle_momentum,
        epsilon=bn.epsilon,
        name=_k(name),
        **_init("gamma", "beta", "moving_mean", "moving_variance"),
    )


def _conv(
    x, filters: int, kernel: int, stride: int, padding: int, bias: bool, name: str, strided_padding: str = "explicit"
):
    if stride > 1 and padding and strided_padding == "explicit":
        # 'same' at stride 2 pads more at the bottom/right than PyTorch's symmetric padding=p.
        x = layers.ZeroPadding2D(padding, data_format=NHWC, name=_k(f"{name}.pad"))(x)
        mode = "valid"
    else:
        # At stride 1 and odd kernels 'same' is exactly the symmetric padding (k-1)/2.
        mode = "same" if padding else "valid"
    return layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding=mode,
        data_format=NHWC,
        use_bias=bias,
        name=_k(name),
        **_init("kernel", "bias"),
    )(x)


def _basic_block(x, b: spec.BasicBlockSpec, cfg: spec.ResNet18Config, strided_padding: str):
    identity = x
    out = _conv(x, b.out_channels, 3, b.stride, 1, cfg.conv_bias, f"{b.name}.conv1", strided_padding)
    out = _bn(f"{b.name}.bn1", spec.RESNET_BN)(out)
    out = layers.ReLU(name=_k(f"{b.name}.relu"))(out)
    out = _conv(out, b.out_channels, 3, 1, 1, cfg.conv_bias, f"{b.name}.conv2")
    out = _bn(f"{b.name}.bn2", spec.RESNET_BN)(out)
    if b.projection:
        identity = _conv(x, b.out_channels, 1, b.stride, 0, cfg.shortcut_bias, f"{b.name}.downsample.0")
        if cfg.shortcut_bn:  # d2l's Residual adds its 1x1 conv3 with no BN after it
            identity = _bn(f"{b.name}.downsample.1", spec.RESNET_BN)(identity)
    out = layers.Add(name=_k(f"{b.name}.add"))([out, identity])
    # The block's output layer carries the block's canonical name (a probe point).
    out = layers.ReLU(name=_k(b.name))(out)
    return out


def _resnet18_graph(cfg: spec.ResNet18Config, strided_padding: str = "explicit"):
    st = cfg.stem_spec
    inputs = keras.Input(shape=(None, None, cfg.in_channels), name="input")
    x = _conv(inputs, 64, st.kernel, st.stride, st.padding, cfg.conv_bias, "conv1", strided_padding)
    x = _bn("bn1", spec.RESNET_BN)(x)
    x = layers.ReLU(name=_k("relu"))(x)
    if st.maxpool:
        # Zero padding equals PyTorch's -inf padding here: the input is post-ReLU, >= 0.
        x = layers.ZeroPadding2D(1, data_format=NHWC, name=_k("maxpool.pad"))(x)
        x = layers.MaxPooling2D(3, strides=2, padding="valid", data_format=NHWC, name=_k("maxpool"))(x)
    else:
        # The cifar stem has no max-pool; Identity keeps the layer (and probe) names uniform.
        x = layers.Identity(name=_k("maxpool"))(x)
    for b in spec.resnet18_blocks(cfg):
        x = _basic_block(x, b, cfg, strided_padding)
    x = layers.GlobalAveragePooling2D(data_format=NHWC, keepdims=True, name=_k("avgpool"))(x)
    x = layers.Flatten(data_format=NHWC, name=_k("flatten"))(x)
    x = layers.Dense(cfg.num_classes, name=_k("fc"), **_init("kernel", "bias"))(x)
    return inputs, x


def _same_conv(filters: int, name: str) -> layers.Conv2D:
    """The MiniModel's 3x3 conv: stride 1, 'same' (symmetric at an odd kernel), with bias."""
    return layers.Conv2D(filters, 3, padding="same", data_format=NHWC, name=_k(name), **_init("kernel", "bias"))


def _unit(x, u: spec.UnitSpec):
    res = x
    if u.pool:
        x = layers.MaxPooling2D(2, data_format=NHWC, name=_k(f"{u.name}.pool"))(x)
        res = layers.Conv2D(
            u.out_channels,
            1,
            strides=2,
            padding="valid",
            data_format=NHWC,
            name=_k(f"{u.name}.shortcut"),
            **_init("kernel", "bias"),
        )(res)
    out = _bn(f"{u.name}.bn1", spec.MINIMODEL_BN)(x)
    out = layers.ReLU(name=_k(f"{u.name}.relu1"))(out)
    out = _same_conv(u.out_channels, f"{u.name}.conv1")(out)
    out = _bn(f"{u.name}.bn2", spec.MINIMODEL_BN)(out)
    out = layers.ReLU(name=_k(f"{u.name}.relu2"))(out)
    out = _same_conv(u.out_channels, f"{u.name}.conv2")(out)
    # The unit's output layer carries the unit's canonical name (a probe point).
    out = layers.Add(name=_k(u.name))([out, res])
    return out


def _minimodel_graph(cfg: spec.MiniModelConfig):
    size = spec.MINIMODEL_INPUT_SIZE
    inputs = keras.Input(shape=(size, size, 3), name="input")
    x = _same_conv(32, "stem.conv")(inputs)
    for u in spec.minimodel_units(cfg):
        x = _unit(x, u)
    x = _bn("head.bn", spec.MINIMODEL_BN)(x)
    x = layers.ReLU(name=_k("head.relu"))(x)
    x = layers.Dropout(spec.MINIMODEL_DROPOUT, name=_k("head.dropout"))(x)
    x = layers.AveragePooling2D(4, data_format=NHWC, name=_k("head.avgpool"))(x)
    x = layers.Flatten(data_format=NHWC, name=_k("head.flatten"))(x)
    x = layers.Dense(cfg.num_classes, name=_k("head.fc"), **_init("kernel", "bias"))(x)
    if cfg.softmax:
        x = layers.Softmax(name=_k("head.softmax"))(x)
    return inputs, x


class _SpecModel(keras.Model):
    """A functional model that remembers its spec config and checks its input shape."""

    def __call__(self, *args: Any, **kwargs: Any):
        self._check_array(args[0] if args else kwargs.get("inputs"), training=bool(kwargs.get("training")))
        return super().__call__(*args, **kwargs)

    # Compiled steps may relax the traced shape to (None, None, None, None), which hides a
    # wrong channel count from __call__; check the concrete array before it gets there.
    def predict(self, x=None, *args: Any, **kwargs: Any):
        self._check_array(x)
        return super().predict(x, *args, **kwargs)

    def predict_on_batch(self, x):
        self._check_array(x)
        return super().predict_on_batch(x)

    def evaluate(self, x=None, *args: Any, **kwargs: Any):
        self._check_array(x)
        return super().evaluate(x, *args, **kwargs)

    def fit(self, x=None, *args: Any, **kwargs: Any):
        self._check_array(x, training=True)
        return super().fit(x, *args, **kwargs)

    def _check_array(self, x: Any, training: bool = False) -> None:
        """The spec's input rule (shape, dtype, no empty training batch) before Keras would cast or pass it on."""
        if hasattr(x, "shape"):
            rule = self.config.input_rule()
            spec.check_input(rule, tuple(x.shape), "NHWC", getattr(x, "dtype", None), self.dtype, training)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "trainable": self.trainable, **self.config.to_dict()}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None):
        return cls(**config)


@keras.saving.register_keras_serializable(package="resnet_keras")
class ResNet18(_SpecModel):
    """ResNet-18 with torchvision's names as layer names; takes NHWC input."""

    def __init__(
        self,
        *,
        num_classes: int = 10,
        stem: str = "cifar",
        in_channels: int = 3,
        shortcut_bias: bool = False,
        conv_bias: bool = False,
        shortcut_bn: bool = True,
        name: str = "resnet18",
        _strided_padding: str = "explicit",
        **kwargs: Any,
    ) -> None:
        cfg = spec.ResNet18Config(num_classes, stem, in_channels, shortcut_bias, conv_bias, shortcut_bn)
        inputs, outputs = _resnet18_graph(cfg, _strided_padding)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.config = cfg


@keras.saving.register_keras_serializable(package="resnet_keras")
class MiniModel(_SpecModel):
    """The Keras tutorial's pre-activation MiniModel with stable layer names; takes NHWC 32x32 input."""

    def __init__(self, *, num_classes: int = 10, softmax: bool = True, name: str = "minimodel", **kwargs: Any) -> None:
        cfg = spec.MiniModelConfig(num_classes, softmax)
        inputs, outputs = _minimodel_graph(cfg)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.config = cfg


def resnet18(
    *,
    num_classes: int = 10,
    stem: str = "cifar",
    in_channels: int = 3,
    shortcut_bias: bool = False,
    conv_bias: bool = False,
    shortcut_bn: bool = True,
) -> ResNet18:
    """ResNet-18 (BasicBlock x [2, 2, 2, 2]) with a ``cifar`` or ``imagenet`` stem.

    d2l's ResNet-18 is ``stem="imagenet"`` with ``conv_bias`` and ``shortcut_bias`` on and ``shortcut_bn``
    off: every conv keeps its default bias and the 1x1 shortcut has no BatchNorm (variant ``resnet18-d2l``).
    """
    return ResNet18(
        num_classes=num_classes,
        stem=stem,
        in_channels=in_channels,
        shortcut_bias=shortcut_bias,
        conv_bias=conv_bias,
        shortcut_bn=shortcut_bn,
    )


def minimodel(*, num_classes: int = 10, softmax: bool = True) -> MiniModel:
    """The Keras tutorial's pre-activation MiniModel; ``softmax=False`` returns logits."""
    return MiniModel(num_classes=num_classes, softmax=softmax)


# Builder name -> function, as data: the one place a model name selects a network.
MODELS = {"resnet18": resnet18, "minimodel": minimodel}


def build(model: str, *, initialize: bool = True, **kwargs: Any) -> keras.Model:
    """Build ``"resnet18"`` or ``"minimodel"`` from builder keyword arguments (validated by the spec).

    ``initialize=False``: the caller never reads the initial values (it replaces every weight next: a file,
    ``import_weights``), so every variable starts at zeros (:func:`zero_variables`) instead of Keras' random
    ``glorot_uniform`` kernels and its zeros and ones.
    """
    cfg = spec.make_config(model, **kwargs)
    with nullcontext() if initialize else zero_variables(), dtype_policy("float32"):
        return MODELS[cfg.model](**kwargs)


@contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Keras' global dtype policy set to ``name`` inside the block, and restored after it (a layer takes the policy
    in force when it is made).

    :func:`build` makes float32 models, as PyTorch's and Paddle's builds do. Left to Keras, ``"floatx": "float64"``
    in a user's keras.json (or their own ``set_dtype_policy``) made every layer float64, and a float32 parity
    report silently compared a float64 Keras model. ``resnet18()`` and ``minimodel()`` follow the global policy,
    as every Keras model does; ``cast_model`` makes the other dtypes.
    """
    saved = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(saved)


@contextmanager
def zero_variables() -> Iterator[None]:
    """Every variable of a model built inside starts at zeros made by numpy, for models whose every weight is
    replaced next.

    Nothing is computed by the backend, which on JAX saves compiling a program per weight shape (:class:`_HostZeros`).
    The model's config holds the builder arguments only, so a model saved and reloaded, or rebuilt from its config
    outside this block, initializes as usual.
    """
    token = _ZEROS.set(True)
    try:
        yield
    finally:
        _ZEROS.reset(token)
