#!/usr/bin/env bash
# The two quick-start commands:
#   ./run.sh report      set up (first use: a .venv with every framework) and run the parity report
#   ./run.sh test        set up and run every test (extra arguments go to pytest)
# Any other argument list is passed to the `resnet-parity` command inside the venv.
set -euo pipefail
caller="$PWD"  # subcommands run here, so `./run.sh convert rel/a.pth b.safetensors` means the caller's files
cd "$(dirname "$0")"
VENV="${RESNET_PARITY_VENV:-.venv}"

pick_python() {
  for c in "${PYTHON:-}" python3.11 python3 python; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 || continue
    if "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then echo "$c"; return; fi
  done
  echo "run.sh: error: Python 3.11 is required (the pinned torch/tensorflow/paddle wheels are cp311); set PYTHON=/path/to/python3.11" >&2
  exit 2
}

stamp="$VENV/.installed-$(cat pyproject.toml constraints/ci.txt constraints/keras-hub.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  py="$(pick_python)"
  [ -x "$VENV/bin/python" ] || { echo "run.sh: creating $VENV with $py" >&2; "$py" -m venv "$VENV"; }
  echo "run.sh: installing the versions in constraints/ci.txt (torch 2.13.0 CPU, tensorflow-cpu 2.21.0, keras 3.15.1, jax 0.10.2 CPU, paddlepaddle 3.3.1) into $VENV (about 90 s on first use)" >&2
  start=$(date +%s)
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[all,jax,test]" -c constraints/ci.txt >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r constraints/keras-hub.txt >&2  # tests only
  rm -f "$VENV"/.installed-*
  touch "$stamp"
  echo "run.sh: installed in $(( $(date +%s) - start )) s" >&2
fi

# OMP_WAIT_POLICY=PASSIVE: with three OpenMP runtimes in one process, spinning idle threads made a
# training step 13x slower (4.0 s vs 0.3 s) on 2 cores.
export PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=3 GLOG_minloglevel=2 OMP_WAIT_POLICY=PASSIVE
cmd="${1:-report}"; [ $# -gt 0 ] && shift
case "$cmd" in
  # two pytest worker processes (pytest-xdist); each model variant's parity levels stay in one of them
  # (parity_tests/conftest.py groups them). RESNET_PARITY_TEST_WORKERS=0 runs in one process.
  test) exec "$VENV/bin/python" -m pytest -n "${RESNET_PARITY_TEST_WORKERS:-2}" --dist loadgroup "$@" ;;
  *) bin="$(cd "$VENV/bin" && pwd)"; cd "$caller" && exec "$bin/resnet-parity" "$cmd" "$@" ;;
esac
