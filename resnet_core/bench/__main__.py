"""``python -m resnet_core.bench --worker JOB.json RESULT.json``: one benchmark worker (started by the parent).

Not a user command: ``resnet-parity bench`` starts one of these per framework and device, with the
environment from :func:`resnet_core.bench.runner.worker_env` already set.
"""

from __future__ import annotations

import sys

from .runner import worker_main

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        sys.exit(worker_main(sys.argv[2], sys.argv[3]))
    sys.exit("usage: python -m resnet_core.bench --worker JOB.json RESULT.json (run `resnet-parity bench` instead)")
