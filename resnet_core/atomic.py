"""Atomic file writes: the one place where the library writes a file.

A file is written to a temp file in the destination's folder and moved into place with
:func:`os.replace`, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[str]:
    """Yield a temp path next to ``path``; on success it replaces ``path`` atomically.

    The temp name keeps ``path``'s suffixes (Keras insists on ``.weights.h5``/``.keras``).
    On any error the temp file is removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} already exists: refusing to overwrite it (use --force)")
    folder, base = os.path.split(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    suffix = "".join(f".{s}" for s in base.split(".")[1:][-2:]) if "." in base else ""
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        if not overwrite and os.path.exists(path):
            raise FileExistsError(f"{path} already exists: refusing to overwrite it (use --force)")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_atomic(path: str | os.PathLike, writer: Callable[[str], None], *, overwrite: bool = True) -> None:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        writer(tmp)


def write_text_atomic(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    write_atomic(path, write, overwrite=overwrite)
