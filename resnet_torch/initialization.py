"""Whether a model's parameters are drawn at random when it is built: the switch behind ``build(initialize=...)``.

The twin of ``resnet_paddle/initialization.py``. PyTorch draws its initial values as usual either way: its
initialization compiles nothing and a ResNet-18 builds in about 0.06 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def initial_values(initialize: bool) -> Iterator[None]:
    """Inside the block, models build with PyTorch's usual random initial values, whatever ``initialize`` says."""
    yield
