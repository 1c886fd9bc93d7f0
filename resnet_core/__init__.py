"""Framework-free core: numpy only; nothing here imports PyTorch, TensorFlow/Keras, Paddle or JAX.

Sub-packages by job:

- :mod:`resnet_core.spec`: the one specification (configs, layers, probes, shapes, FLOPs, the variant table)
- :mod:`resnet_core.names`: canonical name -> each framework's name and layout (the ROLES table)
- :mod:`resnet_core.weights`: strict validation of weight dicts; seeded random weights and inputs
- :mod:`resnet_core.frameworks`: the framework interface (a Protocol) and lazy, import-order-safe access
- :mod:`resnet_core.runtime`: the process environment and the TensorFlow/Paddle import-order fix
- :mod:`resnet_core.porting`: weight files (canonical safetensors, native and third-party formats), convert
- :mod:`resnet_core.parity`: tolerances, comparison, the parity matrix, the report
- :mod:`resnet_core.bench`: the throughput benchmark
- :mod:`resnet_core.cli`: ``resnet-parity``, argparse and printing only, one module per subcommand
"""

from . import names, spec
from .spec import MODELS, VARIANTS, make_config

__version__ = "0.1.0"
__all__ = ["MODELS", "VARIANTS", "__version__", "make_config", "names", "spec"]
