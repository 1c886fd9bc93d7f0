"""The parity engine: how two frameworks' runs are compared, and the matrix of every comparison.

- :mod:`.settings`: tolerances (each with its measured reason), seeds, batch, optimizers, levels
- :mod:`.compare`: per-probe and per-tensor errors, the first diverging layer, the failure message
- :mod:`.matrix`: :class:`Matrix`, every level for every variant and direction, computed once
- :mod:`.structure`: the structure level (counts and stage shapes against the spec)
- :mod:`.report`: the rows as table lines, ``report.md`` and the per-layer plots

The suite (``parity_tests``) and ``resnet-parity report`` both use :class:`Matrix`, so they can
never measure different things.
"""

from . import compare, settings
from .matrix import DeviceUnavailable, Matrix, Row

__all__ = ["DeviceUnavailable", "Matrix", "Row", "compare", "settings"]
