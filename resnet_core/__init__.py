"""Framework-free core: the one specification, canonical names and layouts, checkpoints and the CLI.

Imports numpy only; nothing here imports PyTorch, TensorFlow/Keras or Paddle at import time.
"""

from . import names, spec
from .spec import MODELS, VARIANTS, make_config

__version__ = "0.1.0"
__all__ = ["MODELS", "VARIANTS", "make_config", "names", "spec", "__version__"]
