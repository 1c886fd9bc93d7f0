"""Level 1, structure: counts, canonical names and shapes, stage shapes, bad input.

The expected counts and stage shapes are the figures stated in the
specification issue (and torchvision's published counts), not values read back
from the code under test.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from resnet_core import names, spec
from resnet_core.parity import structure
from resnet_core.parity.settings import BATCH
from resnet_core.weights import random_input, random_weights

from .helpers import require
from .seed_models import D2L_PRINTED_SHAPES_224

pytestmark = pytest.mark.structure
ROOT = pathlib.Path(__file__).resolve().parents[1]

# (trainable parameters, BN moving statistics), as stated by the specification.
EXPECTED_COUNTS = {
    "resnet18-cifar": (11_173_962, 9_600),
    "resnet18-cifar-shortcut_bias": (11_174_858, 9_600),
    "resnet18-imagenet": (11_689_512, 9_600),
    # Counted on the seed's own network (parity_tests/seed_models.py, d2l's code verbatim);
    # test_d2l.py counts it again on every run, so this figure cannot drift from the seed.
    "resnet18-d2l": (11_178_378, 7_808),
    "minimodel": (4_368_714, 5_824),
}
# Per-sample NCHW shapes after each stage at the reference input size.
_CIFAR_STAGES = {
    "stem": (64, 32, 32),
    "layer1": (64, 32, 32),
    "layer2": (128, 16, 16),
    "layer3": (256, 8, 8),
    "layer4": (512, 4, 4),
    "pool": (512, 1, 1),
    "logits": (10,),
}
EXPECTED_STAGES = {
    "resnet18-imagenet": (
        224,
        {
            "stem": (64, 56, 56),
            "layer1": (64, 56, 56),
            "layer2": (128, 28, 28),
            "layer3": (256, 14, 14),
            "layer4": (512, 7, 7),
            "pool": (512, 1, 1),
            "logits": (1000,),
        },
    ),
    "resnet18-cifar": (32, _CIFAR_STAGES),
    "resnet18-cifar-shortcut_bias": (32, _CIFAR_STAGES),  # the shortcut bias changes no shape
    # As the seed prints them at 224x224 (and test_d2l.py checks that its code gives them).
    "resnet18-d2l": (224, D2L_PRINTED_SHAPES_224),
    "minimodel": (
        32,
        {
            "stem": (32, 32, 32),
            "group1": (32, 32, 32),
            "group2": (64, 16, 16),
            "group3": (128, 8, 8),
            "group4": (256, 4, 4),
            "pool": (256, 1, 1),
            "logits": (10,),
        },
    ),
}


def test_spec_counts_match_the_stated_figures(variant):
    cfg = spec.variant(variant).config
    assert tuple(spec.counts(cfg).__dict__.values()) == EXPECTED_COUNTS[variant]


def test_counts(fw, variant):
    v = spec.variant(variant)
    model, kwargs = v.model, dict(v.kwargs)
    got = fw.count_params(fw.build(model, **kwargs))
    assert (got.trainable, got.bn_statistics) == EXPECTED_COUNTS[variant]


def test_canonical_names_and_shapes(fw, variant):
    v = spec.variant(variant)
    model, kwargs, cfg = v.model, dict(v.kwargs), v.config
    exported = fw.export_weights(fw.build(model, **kwargs))
    want = [(p.name, p.shape) for p in spec.param_specs(cfg)]
    assert [(k, v.shape) for k, v in exported.items()] == want
    assert all(v.dtype == np.float32 for v in exported.values())


@pytest.mark.parametrize("model_variant", ["resnet18-cifar", "minimodel"])  # every Conv2D/Dense site of both graphs
def test_a_build_for_replaced_weights_is_the_same_model(fw, framework, model_variant):
    """``build(..., initialize=False)``, used wherever every weight is replaced next (the parity matrix, loading a
    file, the recipes), is the same model: the same canonical names and shapes, and once weights are imported the
    same output at every probe point, bit for bit, as a default build. Keras starts every variable at zeros and
    Paddle its weights and biases (no random numbers drawn; PyTorch draws its cheap ones anyway), and a Keras model
    rebuilt from its config draws them as usual."""
    v = spec.variant(model_variant)
    lean = fw.build(v.model, initialize=False, **v.kwargs)
    default = fw.build(v.model, **v.kwargs)  # built after it: the switch is undone
    shapes = [(k, a.shape) for k, a in fw.export_weights(default).items()]
    assert [(k, a.shape) for k, a in fw.export_weights(lean).items()] == shapes

    def kernels(net) -> list[np.ndarray]:  # every conv and linear weight, canonical
        return [a for k, a in fw.export_weights(net).items() if k.endswith(".weight") and a.ndim > 1]

    assert kernels(default) and all(np.any(k) for k in kernels(default))
    if framework in ("keras", "paddle"):
        assert not any(np.any(k) for k in kernels(lean))
    if framework == "keras":  # every variable, BN statistics included, starts at zeros
        assert not [k for k, a in fw.export_weights(lean).items() if np.any(a)]
        assert all(np.any(k) for k in kernels(type(lean).from_config(lean.get_config())))
    weights = random_weights(v.config, seed=5)
    x = random_input(v.config, 2, *v.reference_size, seed=1)
    for net in (default, lean):
        fw.import_weights(net, weights)
    want, got = fw.probe_outputs(default, x), fw.probe_outputs(lean, x)
    assert list(got) == list(want)
    assert [k for k in want if not np.array_equal(got[k], want[k])] == []


def test_native_names_follow_the_rule(fw, framework, variant):
    """The framework's own names are the canonical ones mapped by resnet_core.names, nothing else."""
    v = spec.variant(variant)
    model, kwargs, cfg = v.model, dict(v.kwargs), v.config
    net = fw.build(model, **kwargs)
    want = {
        names.framework_name(framework, p.module, p.role): names.framework_shape(framework, p.role, p.shape)
        for p in spec.param_specs(cfg)
    }
    if framework == "torch":
        got = {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
        assert list(got) == list(want)  # torchvision's key order too
    elif framework == "paddle":
        got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    else:
        got = {v.path: tuple(v.shape) for v in net.weights}
    assert got == want


def test_stage_shapes_at_reference_size(fw, variant):
    v = spec.variant(variant)
    model, kwargs, cfg = v.model, dict(v.kwargs), v.config
    size, expected = EXPECTED_STAGES[variant]
    outs = fw.probe_outputs(fw.build(model, **kwargs), random_input(cfg, 2, size, size))
    got = {p.stage: tuple(outs[p.name].shape) for p in spec.stages(cfg)}
    assert got == {k: (2, *v) for k, v in expected.items()}
    assert outs["output"].shape == (2, expected["logits"][0])


def test_summary_table_builds_each_model_once(fw, framework, monkeypatch):
    """``resnet-parity summary``'s rows (:func:`structure.rows` on its own): one build serves a row's counts and its
    run, and the row states the specified counts and shapes."""
    build, calls = fw.build, []
    monkeypatch.setattr(fw, "build", lambda *a, **k: calls.append(a) or build(*a, **k))
    (row,) = structure.rows([framework], ["minimodel"])
    assert len(calls) == 1
    assert (row["trainable"], row["bn_statistics"]) == EXPECTED_COUNTS["minimodel"]
    assert row["matches_spec"] and row["output"] == (BATCH, 10)


@pytest.mark.parametrize("hw", [(45, 37), (33, 64)])
def test_stage_shapes_at_odd_sizes(fw, hw):
    for stem in ("cifar", "imagenet"):
        cfg = spec.make_config("resnet18", stem=stem)
        outs = fw.probe_outputs(fw.build("resnet18", stem=stem), random_input(cfg, 1, *hw))
        got = {p.stage: tuple(outs[p.name].shape[1:]) for p in spec.stages(cfg)}
        assert got == spec.stage_shapes(cfg, *hw), stem


def test_minimodel_softmax_switch(fw):
    cfg = spec.make_config("minimodel")
    x = random_input(cfg, 3, 32, 32)
    probs = fw.probe_outputs(fw.build("minimodel"), x)["output"]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    logits = fw.probe_outputs(fw.build("minimodel", softmax=False), x)["output"]
    assert not np.allclose(logits.sum(axis=1), 1.0)


def _forward(framework, fw, net, x):
    """Call the model the way a user would, with the framework's own tensor type."""
    if framework == "torch":
        import torch

        return net.eval()(torch.from_numpy(x))
    if framework == "paddle":
        import paddle

        net.eval()
        return net(paddle.to_tensor(x))
    return net(x, training=False)


def _nchw_or_nhwc(framework, shape):
    return shape if framework != "keras" else (shape[0], shape[2], shape[3], shape[1])


@pytest.mark.parametrize("case", ["channels", "3d", "too_small"])
def test_bad_input_is_a_clear_error(fw, framework, case):
    net = fw.build("resnet18")
    if case == "channels":
        shape, expected, received = (
            _nchw_or_nhwc(framework, (2, 1, 32, 32)),
            "expects 3 input channels",
            "received 1 channels",
        )
    elif case == "3d":
        shape, expected, received = (3, 32, 32), "expects a 4-D", "received a 3-D input"
    else:
        shape, expected, received = _nchw_or_nhwc(framework, (1, 3, 4, 4)), "at least 8x8", "received height 4"
    with pytest.raises(ValueError) as e:
        _forward(framework, fw, net, np.zeros(shape, np.float32))
    assert expected in str(e.value) and received in str(e.value)


def test_minimodel_rejects_other_sizes(fw, framework):
    with pytest.raises(ValueError, match=r"expects 32x32 images.*received 64x64"):
        _forward(framework, fw, fw.build("minimodel"), np.zeros(_nchw_or_nhwc(framework, (1, 3, 64, 64)), np.float32))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"stem": "resnet"}, "unknown stem 'resnet': expected one of ['cifar', 'imagenet']"),
        ({"num_classes": 0}, "num_classes must be a positive int, received 0"),
        ({"in_channels": 2.5}, "in_channels must be a positive int, received 2.5"),
        ({"depth": 50}, "unknown option(s) ['depth'] for resnet18"),
        ({"shortcut_bn": 0}, "shortcut_bn must be a bool, received 0"),
        ({"conv_bias": "yes"}, "conv_bias must be a bool, received 'yes'"),
    ],
)
def test_bad_options_are_clear_errors(fw, kwargs, message):
    with pytest.raises(ValueError) as e:
        fw.build("resnet18", **kwargs)
    assert message in str(e.value)


def test_keras_layers_are_explicitly_named():
    fw = require("keras")
    import keras

    for model, kwargs in ((v.model, dict(v.kwargs)) for v in spec.VARIANTS.values()):
        net = fw.build(model, **kwargs)
        auto = [
            layer.name
            for layer in net.layers
            if layer.name.split("_")[0] in ("conv2d", "batch", "dense", "re", "add", "zero")
        ]
        assert not auto, auto
        clone = type(net).from_config(net.get_config())
        assert clone.config == net.config and [x.name for x in clone.layers] == [x.name for x in net.layers]
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(net))
        assert restored.config == net.config


def test_torch_and_paddle_module_trees_are_the_same():
    """Read side by side, the PyTorch and Paddle files build the same module tree."""
    rt, rp = require("torch"), require("paddle")
    for model, kwargs in ((v.model, dict(v.kwargs)) for v in spec.VARIANTS.values()):
        t = [(n, type(m).__name__.lower().replace("2d", "")) for n, m in rt.build(model, **kwargs).named_modules() if n]
        p = [(n, type(m).__name__.lower().replace("2d", "")) for n, m in rp.build(model, **kwargs).named_sublayers()]
        assert t == p


def test_keras_models_use_only_keras_api():
    tree = ast.parse((ROOT / "resnet_keras" / "models.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "tf")}, imported


def test_core_imports_no_framework():
    code = (
        "import sys, resnet_core, resnet_core.spec, resnet_core.names, resnet_core.weights, resnet_core.cli\n"
        "bad = [m for m in ('torch', 'tensorflow', 'keras', 'paddle', 'jax') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_keras_compiled_paths_check_input_too():
    """After a first predict, Keras may retrace with relaxed (None, ...) shapes; the check must still fire."""
    fw = require("keras")
    net = fw.build("resnet18")
    assert net.predict(np.zeros((2, 32, 32, 3), np.float32), verbose=0).shape == (2, 10)
    with pytest.raises(ValueError, match=r"expects 3 input channels.*received 1 channels"):
        net.predict(np.zeros((2, 32, 32, 1), np.float32), verbose=0)
    with pytest.raises(ValueError, match=r"expects 3 input channels.*received 1 channels"):
        net.evaluate(np.zeros((2, 32, 32, 1), np.float32), np.zeros((2,), np.int64), verbose=0)
