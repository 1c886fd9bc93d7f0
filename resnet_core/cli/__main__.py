"""``python -m resnet_core.cli``: the same as the ``resnet-parity`` console script."""

from . import entry

entry()
