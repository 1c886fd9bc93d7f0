"""``run.sh``: subcommands see the caller's folder, not the clone's.

``run.sh`` changes into the clone to find its venv; before the fix the subcommand ran there too, so
``./run.sh convert rel/in.safetensors out.safetensors`` said "no such file" for a file that exists and
wrote its output into the clone. The venv here is a stand-in (its ``resnet-parity`` runs this
checkout's CLI with this interpreter) with the install stamp in place, so nothing is installed.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import subprocess
import sys

from resnet_core import porting, spec
from resnet_core.weights import random_weights

from .helpers import needs_repository

pytestmark = needs_repository("run.sh")

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _fake_venv(tmp_path: pathlib.Path) -> pathlib.Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    exe = venv / "bin" / "resnet-parity"
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} -m resnet_core.cli "$@"\n')
    exe.chmod(0o755)
    (venv / f".installed-{_stamp()}").touch()
    return venv


def _stamp() -> str:
    """run.sh's install stamp: the hash of the files its ``stamp=`` line names, in that order."""
    line = next(x for x in (ROOT / "run.sh").read_text().splitlines() if x.startswith("stamp="))
    files = re.search(r"\$\(cat ([^|]+) \| sha256sum", line).group(1).split()
    return hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in files)).hexdigest()[:16]


def test_convert_paths_are_relative_to_the_caller(tmp_path):
    caller = tmp_path / "caller"
    (caller / "rel").mkdir(parents=True)
    cfg = spec.make_config("minimodel")
    porting.canonical.write(caller / "rel" / "in.safetensors", cfg, random_weights(cfg, seed=5), "keras")
    env = {**os.environ, "RESNET_PARITY_VENV": str(_fake_venv(tmp_path)), "PYTHONPATH": str(ROOT)}
    before = set(os.listdir(ROOT))
    r = subprocess.run(
        [str(ROOT / "run.sh"), "convert", "rel/in.safetensors", "out.safetensors"],
        cwd=caller,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "installing" not in r.stderr, "the stand-in venv's stamp did not match: run.sh installed into it"
    assert porting.read(caller / "out.safetensors").config == cfg
    assert set(os.listdir(ROOT)) == before, "run.sh wrote into the clone"
