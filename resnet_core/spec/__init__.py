"""The one specification of every architecture, framework-free.

Every framework package builds its networks from the records defined here, and every
test checks the frameworks against them. Shapes are canonical: PyTorch's layout (OIHW
conv kernels, [out, in] linear weights, NCHW activations).

- :mod:`.layers`: the records (``Conv``, ``BatchNorm``, ``Linear``, ``ParamSpec``, ``Probe``, ``Step``)
- :mod:`.config`: ``ModelConfig``, what every config knows about its network
- :mod:`.resnet18`, :mod:`.minimodel`: the architectures, one config class each
- :mod:`.shapes`: stage shapes, BN input sizes and the input check, all from the one shape walk
- :mod:`.flops`: analytic FLOPs from the same walk
- :mod:`.variants`: the variant table (builder options and every size rule)

The module-level functions below (``layers(cfg)``, ``probes(cfg)``, ...) are the same
questions asked of the config; they exist so callers read ``spec.probes(cfg)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from . import flops
from .config import ModelConfig
from .layers import (
    BatchNorm,
    BatchNormSpec,
    Conv,
    Counts,
    InputRule,
    Layer,
    Linear,
    ParamSpec,
    Probe,
    Step,
    conv_out,
    layer_params,
)
from .minimodel import (
    MINIMODEL_BN,
    MINIMODEL_DROPOUT,
    MINIMODEL_INPUT_SIZE,
    MINIMODEL_UNITS,
    MiniModelConfig,
    UnitSpec,
)
from .resnet18 import RESNET18_STAGES, RESNET_BN, STEMS, BasicBlockSpec, ResNet18Config, StemSpec
from .shapes import bn_input_sizes, check_input, check_input_shape, dtype_name, stage_shapes
from .variants import VARIANTS, BenchSpec, Variant, variant

Config = ModelConfig

# The registry of builders, in the spirit of timm's @register_model: name -> config class.
CONFIGS: dict[str, type[ModelConfig]] = {c.model: c for c in (ResNet18Config, MiniModelConfig)}
MODELS = tuple(CONFIGS)


def make_config(model: str, **kwargs: Any) -> ModelConfig:
    """Build and validate the config of ``model`` from builder keyword arguments."""
    if model not in CONFIGS:
        raise ValueError(f"unknown model {model!r}: expected one of {list(MODELS)}")
    cls = CONFIGS[model]
    allowed = {f.name for f in dataclasses.fields(cls)}  # the builder options, not the ClassVars
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {model}: expected a subset of {sorted(allowed)}")
    return cls(**kwargs)


def model_name(cfg: ModelConfig) -> str:
    return cfg.model


def layers(cfg: ModelConfig) -> list[Layer]:
    """Every parametrised layer of the network, in execution/state_dict order."""
    return cfg.layers()


def param_specs(cfg: ModelConfig) -> list[ParamSpec]:
    """Every canonical tensor, in PyTorch ``state_dict`` order."""
    return cfg.param_specs()


def bn_spec(cfg: ModelConfig) -> BatchNormSpec:
    return cfg.bn


def counts(cfg: ModelConfig) -> Counts:
    """Trainable parameters and BN moving statistics, counted the same way for every framework."""
    return cfg.counts()


def probes(cfg: ModelConfig) -> list[Probe]:
    return cfg.probes()


def stages(cfg: ModelConfig) -> list[Probe]:
    return cfg.stages()


def min_input_size(cfg: ModelConfig) -> int:
    return cfg.min_input_size


def resnet18_blocks(cfg: ResNet18Config) -> list[BasicBlockSpec]:
    return cfg.blocks()


def minimodel_units(cfg: MiniModelConfig | None = None) -> list[UnitSpec]:
    return (cfg or MiniModelConfig()).units()


__all__ = [
    "CONFIGS", "MINIMODEL_BN", "MINIMODEL_DROPOUT", "MINIMODEL_INPUT_SIZE", "MINIMODEL_UNITS", "MODELS",
    "RESNET18_STAGES", "RESNET_BN", "STEMS", "VARIANTS", "BasicBlockSpec", "BatchNorm", "BatchNormSpec",
    "BenchSpec", "Config", "Conv", "Counts", "InputRule", "Layer", "Linear", "MiniModelConfig", "ModelConfig",
    "ParamSpec", "Probe", "ResNet18Config", "StemSpec", "Step", "UnitSpec", "Variant", "bn_input_sizes", "bn_spec",
    "check_input", "check_input_shape", "conv_out", "counts", "dtype_name", "flops", "layer_params", "layers",
    "make_config", "min_input_size", "minimodel_units", "model_name", "param_specs", "probes", "resnet18_blocks",
    "stage_shapes", "stages", "variant",
]  # fmt: skip
