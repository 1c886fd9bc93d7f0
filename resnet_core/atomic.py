"""Atomic file writes: the one place where the library writes a file.

A reader sees the old file or the new one, never half of one, and a write that fails or is killed
never damages the destination. How:

* **Unnamed temp file (Linux).** The data goes into an ``O_TMPFILE`` file in the destination's folder:
  it has no name, so a process killed mid-write leaves nothing behind (the kernel frees it). When the
  data is complete it is linked into place (``linkat`` through ``/proc/self/fd``, or ``AT_EMPTY_PATH``
  where the kernel allows it to unprivileged callers, 6.10+). Writers that need a path get
  ``/proc/self/fd/N``, which reopens that same unnamed file.
* **Named temp file (everywhere else).** Where ``O_TMPFILE`` is missing (other OSes, some filesystems),
  where no link into place works (e.g. a sandbox whose ``/proc`` links cross mounts: ``EXDEV``), or
  where the writer needs a real file name (Keras ``save_weights`` insists on the ``.weights.h5``
  suffix), the data goes into ``.<name>.<8 chars>.tmp<suffixes>`` beside the destination and
  :func:`os.replace` moves it into place. The writing process holds an exclusive lock (:func:`_lock`) on its temp
  file; a temp of our naming for the same destination whose lock can be taken belongs to a writer that
  died (killed mid-write), and is removed by the next write to that destination.

Files are created with mode ``0o666`` and the process' umask applies (as for ``open(path, "w")``),
not ``mkstemp``'s ``0o600``. Every error raised while writing names the user's path, never the temp
file's.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import struct
from collections.abc import Callable, Iterator

try:
    import fcntl
except ImportError:  # Windows: no fcntl locks; stale temps are then left alone
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_path", "stale_temps", "temp_pattern", "write_atomic", "write_text_atomic"]

_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
#: st_dev of folders where an unnamed temp file could not be linked into place: go named at once.
_NO_LINK: set[int] = set()


def _suffix(base: str) -> str:
    """The last two suffixes of ``base`` (``.weights.h5``): Keras and Paddle read the format from them."""
    return "".join(f".{s}" for s in base.split(".")[1:][-2:]) if "." in base else ""


def temp_pattern(path: str | os.PathLike) -> re.Pattern[str]:
    """Names of our temp files for ``path`` (the old ``mkstemp`` names match too: 8 chars of ``[a-z0-9_]``)."""
    base = os.path.basename(os.fspath(path))
    return re.compile(rf"\.{re.escape(base)}\.[A-Za-z0-9_]{{8}}\.tmp{re.escape(_suffix(base))}")


def stale_temps(path: str | os.PathLike) -> list[str]:
    """Temp files of our naming for ``path`` whose writer is gone (nobody holds their lock)."""
    if fcntl is None:
        return []
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    pattern, stale = temp_pattern(path), []
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if not pattern.fullmatch(name):
                continue
            full = os.path.join(folder, name)
            try:
                fd = os.open(full, os.O_RDWR)
            except OSError:
                continue
            try:
                if _lock(fd, wait=False):  # nobody holds it: its writer is gone
                    stale.append(full)
            except OSError:
                pass
            finally:
                os.close(fd)
    return stale


def _lock(fd: int, *, wait: bool) -> bool:
    """Take an exclusive lock on the whole file ``fd``; False if another holder has it (``wait=False``).

    An open-file-description lock (``F_OFD_SETLK``, Linux) where available: unlike ``flock`` it does not
    collide with HDF5's own ``flock`` (h5py refuses a file locked that way), and unlike a POSIX ``lockf``
    lock it is not dropped when the writer closes its own descriptor of the file. Elsewhere ``lockf``.
    """
    if fcntl is None:
        return True
    ofd = getattr(fcntl, "F_OFD_SETLKW" if wait else "F_OFD_SETLK", None)
    try:
        if ofd is not None:
            fcntl.fcntl(fd, ofd, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        return True
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise


def _remove_stale(path: str) -> None:
    for tmp in stale_temps(path):
        with contextlib.suppress(OSError):
            os.remove(tmp)


def _open_unnamed(folder: str) -> int | None:
    """An ``O_TMPFILE`` descriptor in ``folder``, or None where that is not possible."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd") or os.stat(folder).st_dev in _NO_LINK:
        return None  # writers reach the unnamed file through /proc/self/fd/N
    try:
        return os.open(folder, flag | os.O_RDWR, 0o666)
    except OSError:  # EOPNOTSUPP (filesystem), EISDIR/EINVAL (old kernels), ...
        return None


def _link_unnamed(fd: int, target: str) -> bool:
    """Give the unnamed file ``fd`` the name ``target`` (which must not exist); False if no way works."""
    try:
        os.link(f"/proc/self/fd/{fd}", target)  # linkat(..., AT_SYMLINK_FOLLOW): the man page's way
        return True
    except FileExistsError:
        raise
    except OSError:
        pass
    try:  # AT_EMPTY_PATH: unprivileged since Linux 6.10 for a file the caller opened
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.linkat(fd, b"", _AT_FDCWD, os.fsencode(target), _AT_EMPTY_PATH) == 0:
            return True
        if ctypes.get_errno() == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target)
    except (OSError, AttributeError) as e:
        if isinstance(e, FileExistsError):
            raise
    return False


@contextlib.contextmanager
def _named_temp(folder: str, base: str) -> Iterator[tuple[str, int]]:
    """A new temp file of our naming, locked for as long as it exists; removed on error."""
    while True:
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(4)}.tmp{_suffix(base)}")
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)  # the umask applies
            break
        except FileExistsError:
            continue
    try:
        _lock(fd, wait=True)
        yield tmp, fd
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    finally:
        os.close(fd)


def _exists_error(path: str) -> FileExistsError:
    return FileExistsError(errno.EEXIST, f"{path} already exists: refusing to overwrite it (use --force)")


def _renamed(e: BaseException, temps: list[str], path: str) -> BaseException | None:
    """``e`` with every temp name replaced by ``path``; None when ``e`` does not mention one."""
    text = str(e)
    names = [t for t in temps if t and t in text] + [
        os.path.basename(t) for t in temps if t and os.path.basename(t) in text
    ]
    filename = getattr(e, "filename", None)
    if not names and filename not in temps:
        return None
    for t in sorted(set(names), key=len, reverse=True):
        text = text.replace(t, path)
    if isinstance(e, OSError) and e.errno is not None:
        strerror = e.strerror or text
        for t in temps:
            strerror = strerror.replace(t, path) if t else strerror
        return type(e)(e.errno, strerror, path)
    try:
        return type(e)(text)
    except Exception:
        return OSError(f"cannot write {path}: {text}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True, named: bool = False) -> Iterator[str]:
    """Yield a path to write to; on success the data appears at ``path`` atomically.

    ``named=True`` gives a real temp file name that keeps ``path``'s last two suffixes (Keras
    insists on ``.weights.h5``/``.keras``); otherwise, on Linux, ``/proc/self/fd/N`` of an unnamed
    file. On any error ``path`` is left as it was, no temp file remains, and the error names
    ``path``. Stale temps of earlier, killed writes to ``path`` are removed first.
    """
    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise _exists_error(path)
    folder, base = os.path.split(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path}: folder {folder} does not exist")
    _remove_stale(path)
    fd = None if named else _open_unnamed(folder)
    temps: list[str] = []
    try:
        if fd is not None:
            temps.append(f"/proc/self/fd/{fd}")
            try:
                yield temps[0]
                _place_unnamed(fd, folder, base, path, overwrite, temps)
            finally:
                os.close(fd)
        else:
            with _named_temp(folder, base) as (tmp, _):
                temps.append(tmp)
                yield tmp
                _replace(tmp, path, overwrite)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as e:
        better = _renamed(e, temps, path)
        if better is None:
            raise
        raise better from e


def _replace(tmp: str, path: str, overwrite: bool) -> None:
    if not overwrite and os.path.exists(path):
        raise _exists_error(path)
    os.replace(tmp, path)


def _place_unnamed(fd: int, folder: str, base: str, path: str, overwrite: bool, temps: list[str]) -> None:
    """Link the finished unnamed file to ``path`` (through a temp name when replacing a file)."""
    try:
        if _link_unnamed(fd, path):
            return
    except FileExistsError:
        if not overwrite:
            raise _exists_error(path) from None
        _lock(fd, wait=True)  # the name we link next is then not "stale" to another writer
        while True:
            tmp = os.path.join(folder, f".{base}.{secrets.token_hex(4)}.tmp{_suffix(base)}")
            with contextlib.suppress(FileExistsError):
                if not _link_unnamed(fd, tmp):
                    raise OSError(errno.EXDEV, "cannot link the temp file into place", path) from None
                break
        temps.append(tmp)
        try:
            _replace(tmp, path, overwrite)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        return
    # No link into place works here: copy into a named temp, rename it, and go named from now on.
    _NO_LINK.add(os.fstat(fd).st_dev)
    with _named_temp(folder, base) as (tmp, out):
        temps.append(tmp)
        size, offset = os.fstat(fd).st_size, 0
        while offset < size:
            chunk = os.pread(fd, min(1 << 24, size - offset), offset)
            os.pwrite(out, chunk, offset)
            offset += len(chunk)
        _replace(tmp, path, overwrite)


def write_atomic(
    path: str | os.PathLike, writer: Callable[[str], None], *, overwrite: bool = True, named: bool = False
) -> None:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, overwrite=overwrite, named=named) as tmp:
        writer(tmp)


def write_text_atomic(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    write_atomic(path, write, overwrite=overwrite)
