"""Canonical name -> per-framework name and layout, as data.

A canonical tensor ``<module>.<slot>`` (for example ``layer1.0.bn1.running_var``)
lives in each framework under a name built by rule from its role:

=================  ================  ==================  ===================  ==========================
role               PyTorch           Paddle              Keras (layer/var)    layout from canonical
=================  ================  ==================  ===================  ==========================
conv.weight        weight  (OIHW)    weight  (OIHW)      kernel  (HWIO)       Keras: transpose(2,3,1,0)
conv.bias          bias              bias                bias
bn.weight          weight            weight              gamma
bn.bias            bias              bias                beta
bn.running_mean    running_mean      _mean               moving_mean
bn.running_var     running_var       _variance           moving_variance
linear.weight      weight [out,in]   weight [in,out]     kernel [in,out]      Keras, Paddle: transpose
linear.bias        bias              bias                bias
=================  ================  ==================  ===================  ==========================

The Keras layer is named after the canonical module with ``_`` for ``.`` (``layer1_0_bn1``,
:func:`keras_layer`): Keras' PyTorch backend refuses dots in layer names (torch module names
can't contain them). Files written before that rule (dotted layer names) are read by the
``keras-dotted`` scheme; ``.weights.h5`` files load into either naming natively, because Keras
stores them by layer order, not by layer name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAMEWORKS = ("torch", "keras", "paddle")


@dataclass(frozen=True)
class Role:
    torch: str
    paddle: str
    keras: str
    keras_perm: tuple[int, ...] | None = None  # canonical -> Keras axes
    paddle_perm: tuple[int, ...] | None = None  # canonical -> Paddle axes


ROLES: dict[str, Role] = {
    "conv.weight": Role("weight", "weight", "kernel", keras_perm=(2, 3, 1, 0)),
    "conv.bias": Role("bias", "bias", "bias"),
    "bn.weight": Role("weight", "weight", "gamma"),
    "bn.bias": Role("bias", "bias", "beta"),
    "bn.running_mean": Role("running_mean", "_mean", "moving_mean"),
    "bn.running_var": Role("running_var", "_variance", "moving_variance"),
    "linear.weight": Role("weight", "weight", "kernel", keras_perm=(1, 0), paddle_perm=(1, 0)),
    "linear.bias": Role("bias", "bias", "bias"),
}


KERAS_SEPARATOR = "_"  # replaces "." of a canonical module in a Keras layer name


def keras_layer(module: str) -> str:
    """The Keras layer name of a canonical module (or probe point): ``layer1.0.bn1`` -> ``layer1_0_bn1``."""
    return module.replace(".", KERAS_SEPARATOR)


def framework_name(framework: str, module: str, role: str, *, keras_dots: bool = False) -> str:
    """The tensor's name in ``framework``: ``module.slot`` (Keras: ``layer/variable``, its variable path).

    ``keras_dots``: the Keras layer keeps the module's dots (this project's names before ``keras_layer``).
    """
    r = ROLES[role]
    if framework == "keras":
        return f"{module if keras_dots else keras_layer(module)}/{r.keras}"
    return f"{module}.{getattr(r, framework)}"


def _perm(framework: str, role: str) -> tuple[int, ...] | None:
    if framework == "torch":
        return None
    return getattr(ROLES[role], f"{framework}_perm")


def to_framework(framework: str, role: str, array: np.ndarray) -> np.ndarray:
    """Canonical layout -> ``framework``'s layout (a contiguous copy)."""
    perm = _perm(framework, role)
    return np.ascontiguousarray(array if perm is None else np.transpose(array, perm))


def from_framework(framework: str, role: str, array: np.ndarray) -> np.ndarray:
    """``framework``'s layout -> canonical layout (always a contiguous copy).

    Always a copy: ``torch.Tensor.numpy()`` shares memory with the live parameter, so a
    view would change under a later import or optimizer step.
    """
    perm = _perm(framework, role)
    return np.array(array if perm is None else np.transpose(array, np.argsort(perm)), order="C", copy=True)


def framework_shape(framework: str, role: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    perm = _perm(framework, role)
    return tuple(shape) if perm is None else tuple(shape[i] for i in perm)


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1))) if x.ndim == 4 else x


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))) if x.ndim == 4 else x
