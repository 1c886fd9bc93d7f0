"""keras-hub's ResNet-18, read and written, checked against the real keras-hub.

keras-hub 0.32.0 itself is used (no rebuild of its model): ``pip install keras-hub`` would pull
the full ``tensorflow`` and ``tensorflow-text`` beside ``tensorflow-cpu``, but the library needs
neither to build and load a ResNet: installed with ``pip install --no-deps -r
constraints/keras-hub.txt`` (run.sh does), it imports with what the project already installs
(keras 3.15.1, absl-py, numpy, packaging, regex, rich; measured: ``import keras_hub``,
``ResNetBackbone``, ``ResNetImageClassifier``, ``save_weights``, ``save`` and ``load_model`` of
its ``.keras`` work offline). Where it is not installed these tests skip, saying so.

The models are built with the ResNet-18 arguments (:data:`resnet_core.porting.keras_hub.BACKBONE_ARGS`,
``image_shape=(None, None, C)``), random weights and random BN statistics, eval mode.

* Reading: files keras-hub writes (classifier and backbone, ``.weights.h5`` and ``.keras``) are
  converted into each framework's native file, loaded with that framework's ``load`` and run:
  the logits (the backbone: every stage) agree with keras-hub's own forward pass within
  ``settings.FORWARD_TOL`` (1e-5, max-abs error over ``max(1, max|ref|)``, float32), on an even
  and an odd input size.
* Writing: ``convert --to keras-hub`` / ``--to keras-hub-backbone`` files are loaded with
  keras-hub's ``load_weights`` (which raises for a missing variable or a wrong shape; the test
  also fails on any warning, such as an optimizer mismatch) and hold exactly the groups and
  datasets of the file keras-hub writes itself (so nothing is unexpected either); the logits
  agree with the source framework's within the same tolerance.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from resnet_core import cli, porting, spec
from resnet_core.parity import compare, settings
from resnet_core.porting import keras_hub as kh
from resnet_core.weights import random_input, random_weights

from .helpers import require
from .test_third_party import randomize_keras

pytestmark = pytest.mark.porting

TOL = settings.FORWARD_TOL
NATIVE = {"torch": ".pth", "keras": ".weights.h5", "paddle": ".pdparams"}
SIZES = [(64, 64), (67, 53)]  # even, and odd sizes where "valid" convs after explicit padding must match torch's
STAGES = ["layer1.1", "layer2.1", "layer3.1", "layer4.1"]  # keras-hub's pyramid outputs P2..P5


@pytest.fixture(scope="module")
def keras_hub():
    require("keras")  # Paddle before TensorFlow, and the Keras start-up settings
    return pytest.importorskip(
        "keras_hub", reason="keras-hub is not installed: pip install --no-deps -r constraints/keras-hub.txt"
    )


def _assert_close(name: str, ref, got) -> None:
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    e = compare.probe_error(name, ref, got)
    assert e.passes(TOL), f"{name}: {e.problem or f'error {e.error:.3e} > {TOL:g}'}"


def _nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _backbone(keras_hub, in_channels: int = 3):
    return keras_hub.models.ResNetBackbone(**kh.BACKBONE_ARGS, image_shape=(None, None, in_channels))


def _classifier(keras_hub, num_classes: int, in_channels: int = 3):
    return keras_hub.models.ResNetImageClassifier(backbone=_backbone(keras_hub, in_channels), num_classes=num_classes)


def _stages(backbone, x: np.ndarray) -> dict[str, np.ndarray]:
    """keras-hub's own stage outputs (its ``pyramid_outputs``), NCHW, under the canonical probe names."""
    import keras

    pyramid = keras.Model(backbone.input, [backbone.pyramid_outputs[f"P{i}"] for i in range(2, 6)])
    return {n: np.asarray(y).transpose(0, 3, 1, 2) for n, y in zip(STAGES, pyramid(_nhwc(x), training=False))}


def _layout(path) -> tuple[set[str], dict[str, tuple]]:
    """A Keras weights file's groups and its datasets' shapes, by path."""
    import h5py

    groups, datasets = set(), {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: datasets.__setitem__(n, o.shape) if isinstance(o, h5py.Dataset) else groups.add(n))
    return groups, datasets


# --------------------------------------------------------------------------- reading keras-hub's files
@pytest.fixture(scope="module")
def hub_files(keras_hub, tmp_path_factory):
    """keras-hub's classifier (6 classes) and backbone, random weights and BN statistics, saved both ways."""
    root = tmp_path_factory.mktemp("keras_hub")
    models = {"classifier": _classifier(keras_hub, 6), "backbone": _backbone(keras_hub)}
    randomize_keras(models["classifier"], seed=31)
    randomize_keras(models["backbone"], seed=32)
    files = {}
    for kind, model in models.items():
        files[kind, "weights.h5"] = root / f"{kind}.weights.h5"
        files[kind, "keras"] = root / f"{kind}.keras"
        model.save_weights(files[kind, "weights.h5"])
        model.save(files[kind, "keras"])
    return models, files


@pytest.mark.parametrize("fw", ["torch", "keras", "paddle"])
@pytest.mark.parametrize("form", ["weights.h5", "keras"])
@pytest.mark.parametrize("kind", ["classifier", "backbone"])
def test_keras_hub_files_port_to_every_framework(hub_files, kind, form, fw, tmp_path):
    models, files = hub_files
    mod = require(fw)
    dst = tmp_path / f"{fw}{NATIVE[fw]}"
    source, _ = porting.convert(files[kind, form], dst)
    assert source.scheme == ("keras-hub" if kind == "classifier" else "keras-hub-backbone")
    assert source.config.num_classes == (6 if kind == "classifier" else 1000)
    net = mod.load(dst)
    for h, w in SIZES:
        x = random_input(source.config, 2, h, w, seed=5)
        got = mod.probe_outputs(net, x)
        model = models[kind]
        if kind == "classifier":
            _assert_close(f"{form} -> {fw} {h}x{w}: logits", np.asarray(model(_nhwc(x), training=False)), got["output"])
            ref = _stages(model.backbone, x)
        else:
            ref = _stages(model, x)
        for name, value in ref.items():
            _assert_close(f"{form} -> {fw} {h}x{w}: {name}", value, got[name])


def test_keras_hub_archive_loads_in_keras_hub_offline(hub_files):
    """The ``.keras`` files above are keras-hub's own: ``keras.saving.load_model`` rebuilds them (no network)."""
    import keras

    models, files = hub_files
    loaded = keras.saving.load_model(files["classifier", "keras"])
    assert type(loaded).__name__ == "ResNetImageClassifier"
    x = _nhwc(random_input(spec.make_config("resnet18", stem="imagenet"), 1, 64, 64, seed=2))
    _assert_close("logits", np.asarray(models["classifier"](x, training=False)), np.asarray(loaded(x, training=False)))


# --------------------------------------------------------------------------- writing for keras-hub
def _source(fw: str, cfg: spec.Config, tmp_path):
    """A model of ``fw`` with random weights, saved to its native file."""
    mod = require(fw)
    net = mod.build(cfg.model, **cfg.to_dict())
    mod.import_weights(net, random_weights(cfg, seed=3))
    src = tmp_path / f"src{NATIVE[fw]}"
    mod.save(net, src)
    return mod, net, src


def _load_strictly(model, path) -> None:
    """keras-hub's ``load_weights``; any warning (an optimizer or variable mismatch) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.load_weights(path)


@pytest.mark.parametrize("source_fw", ["torch", "keras", "paddle"])
def test_written_classifier_loads_in_keras_hub_with_the_same_logits(keras_hub, source_fw, tmp_path):
    cfg = spec.make_config("resnet18", stem="imagenet", num_classes=5)
    mod, net, src = _source(source_fw, cfg, tmp_path)
    dst = tmp_path / "hub.weights.h5"
    assert cli.main(["convert", str(src), str(dst), "--to", "keras-hub", "--verify"]) == 0
    model = _classifier(keras_hub, 5)
    _load_strictly(model, dst)
    own = tmp_path / "own.weights.h5"
    model.save_weights(own)
    assert _layout(dst) == _layout(own)  # the same groups and datasets as keras-hub's own file: nothing unexpected
    for h, w in SIZES:
        x = random_input(cfg, 2, h, w, seed=7)
        _assert_close(f"{h}x{w}: logits", mod.probe_outputs(net, x)["output"], np.asarray(model(_nhwc(x))))
    assert porting.read(dst).scheme == "keras-hub"  # and it reads back as what it is


def test_written_backbone_loads_in_keras_hub_with_the_same_features(keras_hub, tmp_path, capsys):
    """A one-channel backbone: ``image_shape=(None, None, 1)``; the classifier is left out, and the output says so."""
    cfg = spec.make_config("resnet18", stem="imagenet", num_classes=4, in_channels=1)
    mod, net, src = _source("torch", cfg, tmp_path)
    dst = tmp_path / "backbone.weights.h5"
    assert cli.main(["convert", str(src), str(dst), "--to", "keras-hub-backbone"]) == 0
    assert "the classifier (fc) left out" in capsys.readouterr().out
    model = _backbone(keras_hub, in_channels=1)
    _load_strictly(model, dst)
    own = tmp_path / "own.weights.h5"
    model.save_weights(own)
    assert _layout(dst) == _layout(own)
    x = random_input(cfg, 2, 67, 53, seed=7)
    ref = mod.probe_outputs(net, x)
    for name, value in _stages(model, x).items():
        _assert_close(name, ref[name], value)


def test_keras_hub_load_weights_is_strict(keras_hub, tmp_path):
    """The control: keras-hub refuses a file that does not fit (here 5 classes into a 6-class head)."""
    cfg = spec.make_config("resnet18", stem="imagenet", num_classes=5)
    dst = tmp_path / "hub.weights.h5"
    porting.write(dst, cfg, random_weights(cfg, seed=1), to="keras-hub")
    with pytest.raises(ValueError, match="could not be loaded"):
        _classifier(keras_hub, 6).load_weights(dst)


@pytest.mark.parametrize(
    ("model", "options", "expected"),
    [
        ("resnet18", {"stem": "cifar"}, "stem='imagenet'"),
        ("resnet18", {"stem": "imagenet", "shortcut_bias": True}, "shortcut_bias=False"),
        ("minimodel", {}, "these weights are a minimodel"),
    ],
)
def test_what_keras_hub_cannot_hold_is_refused_before_writing(model, options, expected, tmp_path, capsys):
    cfg = spec.make_config(model, **options)
    src = tmp_path / "w.safetensors"
    porting.write_canonical(src, cfg, random_weights(cfg, 1))
    dst = tmp_path / "hub.weights.h5"
    assert cli.main(["convert", str(src), str(dst), "--to", "keras-hub"]) == 2
    err = capsys.readouterr().err
    assert "a keras-hub ResNet-18 is a resnet18 with" in err and expected in err
    assert not dst.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--to", "keras-hub", "{tmp}/hub.keras"], "--to keras-hub but {tmp}/hub.keras names a Keras model archive"),
        (["--to", "keras-hub-backbone", "--verify", "{tmp}/b.weights.h5"], "holds no classifier"),
    ],
)
def test_bad_keras_hub_targets_are_refused(args, expected, tmp_path, capsys):
    cfg = spec.make_config("resnet18", stem="imagenet")
    src = tmp_path / "w.safetensors"
    porting.write_canonical(src, cfg, random_weights(cfg, 1))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert cli.main(["convert", str(src), args[-1], *args[:-1]]) == 2
    assert expected.replace("{tmp}", str(tmp_path)) in capsys.readouterr().err
    assert len(list(tmp_path.iterdir())) == 1
