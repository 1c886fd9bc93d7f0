"""Whether a model's parameters are drawn at random when it is built: the switch behind ``build(initialize=...)``.

The twin of ``resnet_torch/initialization.py``. Paddle's random draws took 0.2 s of a 0.23 s ResNet-18 build;
a model whose every value is replaced next (``initialize=False``) starts its weights and biases at 0 instead
(0.03 s).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from paddle import nn
from paddle.base import initializer as _state  # where Paddle keeps the global initializers it has no getter for


@contextmanager
def initial_values(initialize: bool) -> Iterator[None]:
    """Inside the block with ``initialize=False``, every weight and bias Paddle creates starts at 0.

    Through Paddle's global initializer (``paddle.nn.initializer.set_global_initializer``), which outranks each
    layer's default; whatever was set before is restored afterwards. It is process-wide, so a model built in
    another thread meanwhile starts at 0 too. BatchNorm's running statistics keep their own initializers.
    """
    if initialize:
        yield
        return
    saved = (_state._global_weight_initializer(), _state._global_bias_initializer())
    zero = nn.initializer.Constant(0.0)
    nn.initializer.set_global_initializer(zero, zero)
    try:
        yield
    finally:
        nn.initializer.set_global_initializer(*saved)
