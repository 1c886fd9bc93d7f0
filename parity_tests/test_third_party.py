"""Third-party weight files users actually have, generated here and ported to every framework.

Each source is produced by code that reproduces that source's own module names and
file layout (nothing is downloaded): torchvision's and paddle.vision's resnet18
state dicts, the checkpoint dict that kuangliu/pytorch-cifar's train script saves
(also under DataParallel), the Paddle write-up's ResNet (seed 000) and the Keras
tutorial's auto-named MiniModel (seed 001) in the three files Keras writes. Each is
filled with random weights and BN statistics, converted with the CLI into each
framework's native format, loaded with ``load`` and run: the stage outputs and the
final output must match the third-party model's own forward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from resnet_core import cli, spec
from resnet_core.weights import random_input

from .helpers import require
from .test_porting import NATIVE, TOL, scaled_error

pytestmark = pytest.mark.porting


# --------------------------------------------------------------------------- random fill
def _random_value(name: str, shape: tuple[int, ...], fan_in: int, rng: np.random.Generator) -> np.ndarray:
    """He-scaled kernels; BN statistics and affine terms far from their 0/1 defaults."""
    if len(shape) >= 2:
        a = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
    elif name.endswith(("running_var", "_variance", "moving_variance")):
        a = rng.uniform(0.5, 2.0, shape)
    elif name.endswith(("running_mean", "_mean", "moving_mean")):
        a = rng.uniform(-0.5, 0.5, shape)
    elif name.endswith(("weight", "gamma")):
        a = rng.uniform(0.5, 1.5, shape)
    else:  # biases and BN beta
        a = rng.uniform(-0.2, 0.2, shape)
    return a.astype(np.float32)


def randomize_torch(module, seed: int) -> None:
    import torch

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.from_numpy(_random_value(name, tuple(t.shape), math.prod(t.shape[1:]), rng)))


def randomize_paddle(layer, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for name, t in layer.state_dict().items():
        shape = tuple(t.shape)
        fan_in = shape[0] if len(shape) == 2 else math.prod(shape[1:])  # Paddle Linear is [in, out]
        t.set_value(_random_value(name, shape, fan_in, rng))


def randomize_keras(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for v in model.weights:
        shape = tuple(v.shape)
        v.assign(_random_value(v.path, shape, math.prod(shape[:-1]) if len(shape) > 1 else 1, rng))


# --------------------------------------------------------------------------- torchvision
def torchvision_resnet18(num_classes: int = 1000):
    """torchvision.models.resnet18's module tree (torchvision is not a dependency)."""
    from torch import nn

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            if self.downsample is not None:
                identity = self.downsample(x)
            return self.relu(out + identity)

    class ResNet(nn.Module):
        def __init__(self, layers, num_classes):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = self._make_layer(64, layers[0])
            self.layer2 = self._make_layer(128, layers[1], stride=2)
            self.layer3 = self._make_layer(256, layers[2], stride=2)
            self.layer4 = self._make_layer(512, layers[3], stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)

        def _make_layer(self, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
                )
            layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes
            layers += [BasicBlock(self.inplanes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            x = self.avgpool(x)
            return self.fc(x.flatten(1))

    return ResNet([2, 2, 2, 2], num_classes)


# --------------------------------------------------------------------------- pytorch-cifar
def kuangliu_resnet18(num_classes: int = 10):
    """models/resnet.py of kuangliu/pytorch-cifar: ResNet18 = ResNet(BasicBlock, [2, 2, 2, 2])."""
    import torch.nn.functional as F
    from torch import nn

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, in_planes, planes, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.shortcut = nn.Sequential()
            if stride != 1 or in_planes != self.expansion * planes:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(self.expansion * planes),
                )

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += self.shortcut(x)
            return F.relu(out)

    class ResNet(nn.Module):
        def __init__(self, block, num_blocks, num_classes=10):
            super().__init__()
            self.in_planes = 64
            self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
            self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
            self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
            self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
            self.linear = nn.Linear(512 * block.expansion, num_classes)

        def _make_layer(self, block, planes, num_blocks, stride):
            strides = [stride] + [1] * (num_blocks - 1)
            layers = []
            for stride in strides:
                layers.append(block(self.in_planes, planes, stride))
                self.in_planes = planes * block.expansion
            return nn.Sequential(*layers)

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
            out = F.avg_pool2d(out, 4)
            out = out.view(out.size(0), -1)
            return self.linear(out)

    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def save_like_pytorch_cifar(net, folder, data_parallel: bool) -> str:
    """What main.py does when the test accuracy improves (DataParallel when device == 'cuda')."""
    import os

    import torch

    if data_parallel:
        net = torch.nn.DataParallel(net)  # on CUDA in the script; the state_dict names are the same on CPU
    acc, epoch = 100.0 * 9123 / 10000, 187
    state = {"net": net.state_dict(), "acc": acc, "epoch": epoch}
    os.makedirs(os.path.join(folder, "checkpoint"), exist_ok=True)
    path = os.path.join(folder, "checkpoint", "ckpt.pth")
    torch.save(state, path)
    return path


# --------------------------------------------------------------------------- seed 000: Paddle write-up
def paddle_writeup_resnet18(num_classes: int = 10):
    """The write-up's 基于飞桨的模型复现 ResNet_18 (Identity, Block, ResNet), as published."""
    from paddle import nn

    class Identity(nn.Layer):
        def forward(self, x):
            return x

    class Block(nn.Layer):
        def __init__(self, in_dim, out_dim, stride):
            super().__init__()
            self.conv1 = nn.Conv2D(in_dim, out_dim, 3, stride=stride, padding=1, bias_attr=False)
            self.bn1 = nn.BatchNorm2D(out_dim)
            self.conv2 = nn.Conv2D(out_dim, out_dim, 3, stride=1, padding=1, bias_attr=False)
            self.bn2 = nn.BatchNorm2D(out_dim)
            self.relu = nn.ReLU()
            if stride == 2 or in_dim != out_dim:
                self.downsample = nn.Sequential(
                    *[nn.Conv2D(in_dim, out_dim, 1, stride=stride), nn.BatchNorm2D(out_dim)]
                )
            else:
                self.downsample = Identity()

        def forward(self, x):
            h = x
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.bn2(self.conv2(x))
            return self.relu(x + self.downsample(h))

    class ResNet(nn.Layer):
        def __init__(self, in_dim=64, num_classes=10):
            super().__init__()
            self.in_dim = in_dim
            self.conv1 = nn.Conv2D(
                in_channels=3, out_channels=in_dim, kernel_size=3, stride=1, padding=1, bias_attr=False
            )
            self.bn1 = nn.BatchNorm2D(in_dim)
            self.relu = nn.ReLU()
            self.layers1 = self._make_layer(dim=64, n_blocks=2, stride=1)
            self.layers2 = self._make_layer(dim=128, n_blocks=2, stride=2)
            self.layers3 = self._make_layer(dim=256, n_blocks=2, stride=2)
            self.layers4 = self._make_layer(dim=512, n_blocks=2, stride=2)
            self.avgpool = nn.AdaptiveAvgPool2D(1)
            self.classifier = nn.Linear(512, num_classes)

        def _make_layer(self, dim, n_blocks, stride):
            layer_list = [Block(self.in_dim, dim, stride=stride)]
            self.in_dim = dim
            for _ in range(1, n_blocks):
                layer_list.append(Block(self.in_dim, dim, stride=1))
            return nn.Sequential(*layer_list)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layers4(self.layers3(self.layers2(self.layers1(x))))
            x = self.avgpool(x).flatten(1)
            return self.classifier(x)

    return ResNet(num_classes=num_classes)


# --------------------------------------------------------------------------- seed 001: Keras tutorial
def keras_tutorial_minimodel():
    """The tutorial's Unit and MiniModel (Keras 3 import paths), layers auto-named by Keras."""
    import keras
    from keras import Input, Model
    from keras.layers import (
        Activation,
        AveragePooling2D,
        BatchNormalization,
        Conv2D,
        Dense,
        Dropout,
        Flatten,
        MaxPooling2D,
    )

    def Unit(x, filters, pool=False):
        res = x
        if pool:
            x = MaxPooling2D(pool_size=(2, 2))(x)
            res = Conv2D(filters=filters, kernel_size=[1, 1], strides=(2, 2), padding="same")(res)
        out = BatchNormalization()(x)
        out = Activation("relu")(out)
        out = Conv2D(filters=filters, kernel_size=[3, 3], strides=[1, 1], padding="same")(out)
        out = BatchNormalization()(out)
        out = Activation("relu")(out)
        out = Conv2D(filters=filters, kernel_size=[3, 3], strides=[1, 1], padding="same")(out)
        out = keras.layers.add([res, out])
        return out

    def MiniModel(input_shape):
        images = Input(input_shape)
        net = Conv2D(filters=32, kernel_size=[3, 3], strides=[1, 1], padding="same")(images)
        net = Unit(net, 32)
        net = Unit(net, 32)
        net = Unit(net, 32)
        net = Unit(net, 64, pool=True)
        net = Unit(net, 64)
        net = Unit(net, 64)
        net = Unit(net, 128, pool=True)
        net = Unit(net, 128)
        net = Unit(net, 128)
        net = Unit(net, 256, pool=True)
        net = Unit(net, 256)
        net = Unit(net, 256)
        net = BatchNormalization()(net)
        net = Activation("relu")(net)
        net = Dropout(0.25)(net)
        net = AveragePooling2D(pool_size=(4, 4))(net)
        net = Flatten()(net)
        net = Dense(units=10, activation="softmax")(net)
        return Model(inputs=images, outputs=net)

    # A notebook rarely builds its model first: earlier layers push the auto-name counters on.
    Conv2D(8, 3), Conv2D(8, 3), BatchNormalization(), Dense(4)
    return MiniModel((32, 32, 3))


# --------------------------------------------------------------------------- the sources
@dataclass(frozen=True)
class Source:
    scheme: str  # the scheme the converter must detect
    model: str
    config: dict  # the config it must infer
    stages: dict  # third-party module -> canonical stage (spec.stages), compared besides the output


TORCH_STAGES = {f"layer{i}": f"layer{i}" for i in range(1, 5)}
SOURCES = {
    "torchvision": Source("canonical", "resnet18", {"stem": "imagenet", "num_classes": 1000}, TORCH_STAGES),
    "paddle.vision": Source("paddle", "resnet18", {"stem": "imagenet", "num_classes": 1000}, TORCH_STAGES),
    "pytorch-cifar": Source("pytorch-cifar", "resnet18", {}, TORCH_STAGES),
    "pytorch-cifar-dataparallel": Source("pytorch-cifar", "resnet18", {}, TORCH_STAGES),
    "paddle-writeup": Source(
        "paddle-writeup",
        "resnet18",
        {"shortcut_bias": True, "num_classes": 100},
        {f"layers{i}": f"layer{i}" for i in range(1, 5)},
    ),
    "keras-tutorial.weights.h5": Source("keras-tutorial", "minimodel", {}, {}),
    "keras-tutorial.keras": Source("keras-tutorial", "minimodel", {}, {}),
    "keras-tutorial.h5": Source("keras-tutorial", "minimodel", {}, {}),  # what the tutorial's code writes
}


def _torch_forward(net, x: np.ndarray, stages: dict) -> dict[str, np.ndarray]:
    import torch

    out, mods = {}, dict(net.named_modules())
    hooks = [
        mods[m].register_forward_hook(lambda _m, _i, o, n=n: out.__setitem__(n, o.detach().clone().numpy()))
        for m, n in stages.items()
    ]
    with torch.no_grad():
        out["output"] = net.eval()(torch.from_numpy(x)).numpy()
    for h in hooks:
        h.remove()
    return out


def _paddle_forward(net, x: np.ndarray, stages: dict) -> dict[str, np.ndarray]:
    import paddle

    out, mods = {}, dict(net.named_sublayers())
    hooks = [
        mods[m].register_forward_post_hook(lambda _l, _i, o, n=n: out.__setitem__(n, o.numpy().copy()))
        for m, n in stages.items()
    ]
    net.eval()
    with paddle.no_grad():
        out["output"] = net(paddle.to_tensor(x)).numpy()
    for h in hooks:
        h.remove()
    return out


def make_source(name: str, folder) -> tuple[str, np.ndarray, dict[str, np.ndarray]]:
    """Write the third-party file; return its path, an NCHW input and the source model's own outputs."""
    src = SOURCES[name]
    cfg = spec.make_config(src.model, **src.config)
    size = 64 if src.config.get("stem") == "imagenet" else 32
    x = random_input(cfg, 2, size, size, seed=11)
    if name in ("torchvision", "pytorch-cifar", "pytorch-cifar-dataparallel"):
        require("torch")  # before the import: without torch this is a skip that says why
        import torch

        net = torchvision_resnet18() if name == "torchvision" else kuangliu_resnet18()
        randomize_torch(net, seed=len(name))
        if name == "torchvision":
            path = str(folder / "resnet18-f37072fd.pth")
            torch.save(net.state_dict(), path)
        else:
            path = save_like_pytorch_cifar(net, str(folder), data_parallel=name.endswith("dataparallel"))
        return path, x, _torch_forward(net, x, src.stages)
    if name in ("paddle.vision", "paddle-writeup"):
        import paddle

        require("paddle")
        if name == "paddle.vision":
            net = paddle.vision.models.resnet18(num_classes=1000)  # the library's own model, pretrained=False
        else:
            net = paddle_writeup_resnet18(num_classes=100)
        randomize_paddle(net, seed=len(name))
        path = str(folder / f"{name}.pdparams")
        paddle.save(net.state_dict(), path)
        return path, x, _paddle_forward(net, x, src.stages)
    import keras

    require("keras")
    net = keras_tutorial_minimodel()
    randomize_keras(net, seed=1)
    ext = name[len("keras-tutorial") :]
    path = str(folder / f"cifar10model{ext}")
    if ext == ".weights.h5":
        net.save_weights(path)
    else:
        net.save(path)  # .keras, or the legacy HDF5 model that the tutorial's model.save("cifar10model.h5") writes
    probs = keras.ops.convert_to_numpy(net(np.transpose(x, (0, 2, 3, 1)), training=False))
    return path, x, {"output": probs}


_MADE: dict[str, tuple] = {}


@pytest.fixture(scope="module")
def third_party(tmp_path_factory):
    def get(name: str):
        if name not in _MADE:
            _MADE[name] = make_source(name, tmp_path_factory.mktemp(name.replace(".", "-")))
        return _MADE[name]

    return get


@pytest.mark.parametrize("name", list(SOURCES))
def test_third_party_file_ports(name, framework, third_party, tmp_path, capsys):
    """Every source, converted by the CLI into each framework's native format, then loaded and run."""
    src = SOURCES[name]
    target = framework
    fw = require(target)
    path, x, ref = third_party(name)
    dst = tmp_path / f"ported{NATIVE[target][0]}"
    assert cli.main(["convert", path, str(dst)]) == 0
    printed = capsys.readouterr().out
    assert f"scheme {src.scheme}: " in printed, printed
    net = fw.load(dst)
    assert fw.config_of(net) == spec.make_config(src.model, **src.config)
    got = fw.probe_outputs(net, x)
    probe_of = {p.stage: p.name for p in spec.stages(fw.config_of(net))} | {"output": "output"}
    assert set(ref) == set(src.stages.values()) | {"output"}
    for stage, want in ref.items():
        err = scaled_error(got[probe_of[stage]], want)
        # Same tolerance as the porting suite, for the same reason (float32 summation order).
        assert err <= TOL, f"{name} -> {target}: {stage} ({probe_of[stage]}) differs by {err:.3g}"


def test_pytorch_cifar_checkpoint_details_are_reported(third_party, tmp_path, capsys):
    path, _, _ = third_party("pytorch-cifar-dataparallel")
    assert cli.main(["convert", path, str(tmp_path / "out.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "'net' entry (acc=91.23, epoch=187)" in out
    assert "stripped the 'module.' prefix" in out
    assert "ignored 20 bookkeeping entries (num_batches_tracked)" in out
