"""ResNet-18 and MiniModel in PaddlePaddle, built from :mod:`resnet_core.spec`.

Read side by side with ``resnet_torch/models.py`` and ``resnet_keras/models.py``:
the same blocks, the same names, in the same order.
"""

from __future__ import annotations

import paddle
from paddle import Tensor, nn

from resnet_core import spec

from .initialization import initial_values


def _bn(channels: int, bn: spec.BatchNormSpec) -> nn.BatchNorm2D:
    # Paddle's momentum is the weight of the *old* running value: PyTorch 0.1 is Paddle 0.9.
    return nn.BatchNorm2D(channels, momentum=bn.keras_paddle_momentum, epsilon=bn.epsilon)


class BasicBlock(nn.Layer):
    def __init__(self, b: spec.BasicBlockSpec, cfg: spec.ResNet18Config) -> None:
        super().__init__()
        self.conv1 = nn.Conv2D(b.in_channels, b.out_channels, 3, stride=b.stride, padding=1, bias_attr=cfg.conv_bias)
        self.bn1 = _bn(b.out_channels, spec.RESNET_BN)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2D(b.out_channels, b.out_channels, 3, stride=1, padding=1, bias_attr=cfg.conv_bias)
        self.bn2 = _bn(b.out_channels, spec.RESNET_BN)
        self.downsample = None
        if b.projection:
            shortcut = [nn.Conv2D(b.in_channels, b.out_channels, 1, stride=b.stride, bias_attr=cfg.shortcut_bias)]
            if cfg.shortcut_bn:  # d2l's Residual adds its 1x1 conv3 with no BN after it
                shortcut.append(_bn(b.out_channels, spec.RESNET_BN))
            self.downsample = nn.Sequential(*shortcut)

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out = out + identity
        out = self.relu(out)
        return out


class ResNet18(nn.Layer):
    """ResNet-18 with paddle.vision's (= torchvision's) attribute names; takes NCHW input."""

    def __init__(self, cfg: spec.ResNet18Config) -> None:
        super().__init__()
        self.config = cfg
        self.input_rule = cfg.input_rule()  # plain values: paddle.jit.to_static traces forward
        st, bias = cfg.stem_spec, cfg.conv_bias
        self.conv1 = nn.Conv2D(cfg.in_channels, 64, st.kernel, stride=st.stride, padding=st.padding, bias_attr=bias)
        self.bn1 = _bn(64, spec.RESNET_BN)
        self.relu = nn.ReLU()
        # The cifar stem has no max-pool; Identity keeps the module (and probe) names uniform.
        self.maxpool = nn.MaxPool2D(3, stride=2, padding=1) if st.maxpool else nn.Identity()
        blocks = spec.resnet18_blocks(cfg)
        for i in range(1, 5):
            stage = [BasicBlock(b, cfg) for b in blocks if b.name.startswith(f"layer{i}.")]
            setattr(self, f"layer{i}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2D((1, 1))
        self.fc = nn.Linear(512, cfg.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        spec.check_input(self.input_rule, tuple(x.shape), "NCHW", x.dtype, self.fc.weight.dtype, self.training)
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = paddle.flatten(x, 1)
        x = self.fc(x)
        return x


class Unit(nn.Layer):
    """Pre-activation unit of the Keras MiniModel: BN-ReLU-Conv twice, plus the shortcut."""

    def __init__(self, u: spec.UnitSpec) -> None:
        super().__init__()
        self.pool = nn.MaxPool2D(2) if u.pool else None
        self.shortcut = nn.Conv2D(u.in_channels, u.out_channels, 1, stride=2) if u.pool else None
        self.bn1 = _bn(u.in_channels, spec.MINIMODEL_BN)
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2D(u.in_channels, u.out_channels, 3, padding=1)
        self.bn2 = _bn(u.out_channels, spec.MINIMODEL_BN)
        self.conv2 = nn.Conv2D(u.out_channels, u.out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        res = x
        if self.pool is not None:
            x = self.pool(x)
            res = self.shortcut(res)
        out = self.bn1(x)
        out = self.relu(out)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = out + res
        return out


class Stem(nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2D(3, 32, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Head(nn.Layer):
    def __init__(self, cfg: spec.MiniModelConfig) -> None:
        super().__init__()
        self.bn = _bn(256, spec.MINIMODEL_BN)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(spec.MINIMODEL_DROPOUT)
        self.avgpool = nn.AvgPool2D(4)
        self.fc = nn.Linear(256, cfg.num_classes)
        self.softmax = nn.Softmax(axis=1) if cfg.softmax else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(x)
        x = self.relu(x)
        x = self.dropout(x)
        x = self.avgpool(x)
        x = paddle.flatten(x, 1)
        x = self.fc(x)
        x = self.softmax(x)
        return x


class MiniModel(nn.Layer):
    """The pre-activation MiniModel of the Keras tutorial; takes NCHW 32x32 input."""

    def __init__(self, cfg: spec.MiniModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.input_rule = cfg.input_rule()  # plain values: paddle.jit.to_static traces forward
        self.stem = Stem()
        for u in spec.minimodel_units(cfg):
            setattr(self, u.name, Unit(u))
        self.head = Head(cfg)

    def forward(self, x: Tensor) -> Tensor:
        weights_dtype = self.stem.conv.weight.dtype
        spec.check_input(self.input_rule, tuple(x.shape), "NCHW", x.dtype, weights_dtype, self.training)
        x = self.stem(x)
        # One call per line, no loop: paddle.jit.to_static can't convert a loop over the spec.
        x = self.unit1(x)
        x = self.unit2(x)
        x = self.unit3(x)
        x = self.unit4(x)
        x = self.unit5(x)
        x = self.unit6(x)
        x = self.unit7(x)
        x = self.unit8(x)
        x = self.unit9(x)
        x = self.unit10(x)
        x = self.unit11(x)
        x = self.unit12(x)
        x = self.head(x)
        return x


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
    return ResNet18(spec.ResNet18Config(num_classes, stem, in_channels, shortcut_bias, conv_bias, shortcut_bn))


def minimodel(*, num_classes: int = 10, softmax: bool = True) -> MiniModel:
    """The Keras tutorial's pre-activation MiniModel; ``softmax=False`` returns logits."""
    return MiniModel(spec.MiniModelConfig(num_classes, softmax))


# Builder name -> class, as data: the one place a model name selects a network.
MODELS = {"resnet18": ResNet18, "minimodel": MiniModel}


def build(model: str, *, initialize: bool = True, **kwargs) -> nn.Layer:
    """Build ``"resnet18"`` or ``"minimodel"`` from builder keyword arguments (validated by the spec).

    ``initialize=False`` is for a model whose initial values are never read (every weight is replaced next): where
    drawing them costs (Paddle), the parameters start at 0 instead (``initialization.initial_values``).
    """
    cfg = spec.make_config(model, **kwargs)
    with initial_values(initialize):
        return MODELS[cfg.model](cfg)
