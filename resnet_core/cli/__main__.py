"""``python -m resnet_core.cli``: the same as the ``resnet-parity`` console script."""

import sys

from . import main

sys.exit(main())
