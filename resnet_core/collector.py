"""Python's cyclic garbage collector in this project's own processes: the CLI and the worker processes.

Importing PyTorch, TensorFlow/Keras and PaddlePaddle leaves about 640,000 objects that live as long as the
process, and every full collection walks all of them again: 0.33 s each on the 2-core machine. The main process
of a ``report --quick`` ran 13 full collections (2.6 s of its 23 s of CPU, measured with ``gc.callbacks``), and
the 8 that ran while the frameworks imported freed about 400 objects between them.

:func:`loading_frameworks` pauses the collector while frameworks import, then moves every object that exists into
the permanent generation (:func:`gc.freeze`), where later collections skip it. Objects made afterwards (models,
arrays, results) are collected as before. It is for processes this project owns: a library call such as
:func:`resnet_core.frameworks.load_all` leaves a user's collector alone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loading_frameworks() -> Iterator[None]:
    """The collector paused inside the block (as it was before, after it), then everything made so far frozen."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.freeze()
