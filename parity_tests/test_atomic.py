"""``resnet_core.atomic``: file modes follow the umask, killed writes leave no litter, errors name the user's path.

Both ways of writing are tested: the unnamed ``O_TMPFILE`` file (Linux) and the named, locked temp
file (``named=True``, Keras' way, and the fallback where no unnamed file can be linked into place).
"""

from __future__ import annotations

import errno
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from resnet_core import atomic, porting, spec
from resnet_core.weights import random_weights

ROOT = pathlib.Path(__file__).resolve().parents[1]
NAMED = pytest.mark.parametrize("named", [False, True], ids=["unnamed", "named"])


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield 0o640
    finally:
        os.umask(old)


def _write_bytes(data: bytes):
    def writer(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return writer


@NAMED
def test_mode_follows_the_umask(tmp_path, umask_027, named):
    """Before: every file was 0600 (mkstemp); now 0666 minus the umask, as ``open(path, "w")`` gives."""
    dst = tmp_path / "out.bin"
    atomic.write_atomic(dst, _write_bytes(b"abc"), named=named)
    assert dst.read_bytes() == b"abc"
    assert dst.stat().st_mode & 0o777 == umask_027
    atomic.write_atomic(dst, _write_bytes(b"new"), named=named)  # replacing an existing file
    assert dst.read_bytes() == b"new" and dst.stat().st_mode & 0o777 == umask_027
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]


def test_canonical_and_text_files_follow_the_umask(tmp_path, umask_027):
    cfg = spec.make_config("minimodel")
    porting.canonical.write(tmp_path / "m.safetensors", cfg, random_weights(cfg, seed=3), "keras")
    atomic.write_text_atomic(tmp_path / "r.md", "# report\n")
    for name in ("m.safetensors", "r.md"):
        assert (tmp_path / name).stat().st_mode & 0o777 == umask_027, name


def _killed_write(dst: pathlib.Path, named: bool) -> subprocess.CompletedProcess:
    """A process that dies by SIGKILL in the middle of writing ``dst`` (half the data written)."""
    code = textwrap.dedent(f"""
        import os, signal
        from resnet_core import atomic
        def writer(tmp):
            with open(tmp, "wb") as f:
                f.write(b"x" * 100_000)
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        atomic.write_atomic({str(dst)!r}, writer, named={named})
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


@NAMED
def test_a_killed_write_leaves_the_destination_and_no_litter(tmp_path, named):
    """Before: each killed write left a hidden ``.out.bin.XXXX.tmp.bin`` behind for good."""
    dst = tmp_path / "out.bin"
    dst.write_bytes(b"old")
    for _ in range(3):
        r = _killed_write(dst, named)
        assert r.returncode == -9, r.stderr
    assert dst.read_bytes() == b"old"
    left = sorted(set(os.listdir(tmp_path)) - {"out.bin"})
    if named:  # a named temp survives its killed writer until the next write to the same file removes it
        assert len(left) == 1 and atomic.temp_pattern(dst).fullmatch(left[0]), left
        assert [os.path.basename(t) for t in atomic.stale_temps(dst)] == left
    else:
        assert left == []
    atomic.write_atomic(dst, _write_bytes(b"new"))
    assert sorted(os.listdir(tmp_path)) == ["out.bin"] and dst.read_bytes() == b"new"


def test_a_live_writers_temp_is_not_stale(tmp_path):
    """Negative control for the clean-up: the temp of a writer that is still running is left alone."""
    dst = tmp_path / "out.bin"
    code = textwrap.dedent(f"""
        import sys, time
        from resnet_core import atomic
        def writer(tmp):
            open(tmp, "wb").write(b"partial")
            print("writing", flush=True)
            sys.stdin.readline()
        atomic.write_atomic({str(dst)!r}, writer, named=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    pipe = subprocess.PIPE
    p = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=pipe, stdout=pipe, text=True)
    try:
        assert p.stdout.readline().strip() == "writing"
        (theirs,) = [n for n in os.listdir(tmp_path) if atomic.temp_pattern(dst).fullmatch(n)]
        assert atomic.stale_temps(dst) == []
        atomic.write_atomic(dst, _write_bytes(b"mine"))
        assert (tmp_path / theirs).exists()
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert dst.read_bytes() == b"partial" and os.listdir(tmp_path) == ["out.bin"]


@NAMED
@pytest.mark.parametrize("kind", ["oserror", "valueerror"])
def test_errors_name_the_users_path_not_the_temp(tmp_path, named, kind):
    dst = tmp_path / "out.weights.h5"

    def writer(tmp: str) -> None:
        if kind == "oserror":
            raise OSError(errno.ENOSPC, "No space left on device", tmp)
        raise ValueError(f"Invalid filepath {tmp!r}: cannot save")

    with pytest.raises((OSError, ValueError)) as info:
        atomic.write_atomic(dst, writer, named=named)
    msg = str(info.value)
    assert str(dst) in msg and ".tmp" not in msg and "/proc/self/fd" not in msg, msg
    assert isinstance(info.value, OSError if kind == "oserror" else ValueError)
    assert os.listdir(tmp_path) == []


def test_fallback_when_the_unnamed_file_cannot_be_linked(tmp_path, monkeypatch, umask_027):
    """Where no link into place works (EXDEV in some sandboxes), the data is copied to a named temp."""
    monkeypatch.setattr(atomic, "_link_unnamed", lambda fd, target: False)
    monkeypatch.setattr(atomic, "_NO_LINK", set())
    data = np.random.default_rng(0).bytes(3 << 20)
    dst = tmp_path / "big.bin"
    atomic.write_atomic(dst, _write_bytes(data))
    assert dst.read_bytes() == data and dst.stat().st_mode & 0o777 == umask_027
    assert os.listdir(tmp_path) == ["big.bin"]


def test_no_overwrite_is_refused_before_and_after_writing(tmp_path):
    dst = tmp_path / "out.bin"
    dst.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="already exists"):
        atomic.write_atomic(dst, _write_bytes(b"x"), overwrite=False)

    def appears(tmp: str) -> None:  # someone else creates dst while we write
        _write_bytes(b"x")(tmp)
        dst.write_bytes(b"theirs")

    dst.unlink()
    for named in (False, True):
        with pytest.raises(FileExistsError, match="already exists"):
            atomic.write_atomic(dst, appears, overwrite=False, named=named)
        assert dst.read_bytes() == b"theirs" and os.listdir(tmp_path) == ["out.bin"]
        dst.unlink()
