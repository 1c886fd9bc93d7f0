"""A framework package in another process: Keras on a backend other than this process' own.

Keras fixes its backend when it is first imported (``KERAS_BACKEND``), so Keras on JAX and Keras on
PyTorch cannot run beside Keras on TensorFlow in one process. :func:`package` starts one worker
process per implementation (``python -m resnet_core.remote``, with the implementation's environment)
the first time it is asked for, keeps it for the life of this process, and returns a
:class:`RemotePackage`: the :class:`~resnet_core.frameworks.FrameworkPackage` functions, each run in
the worker. Models stay in the worker; this side holds a :class:`RemoteModel` handle (with the model's
``config``). Arrays cross as numpy through a socket pair, each one's bytes written once, straight from
the array and straight into the new one (pickle protocol 5's out-of-band buffers); context managers
(``on_device``, ``tf32``) are entered and left in the worker. An exception in the worker is raised
here with its type and message, and the worker's traceback added.

This module imports no framework; the worker imports only its own ``resnet_<framework>`` package.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
import traceback
import weakref
from collections.abc import Iterator
from typing import Any

__all__ = ["RemoteError", "RemoteModel", "RemotePackage", "package", "shutdown", "start", "stop"]


class RemoteError(RuntimeError):
    """The worker failed in a way that has no exception of its own to raise here (or it died)."""


class RemoteModel:
    """A model that lives in a worker process; ``config`` is its spec config (a copy)."""

    def __init__(self, worker: _Worker, handle: int, config: Any, kind: str) -> None:
        self.worker, self.handle, self.config, self.kind = worker, handle, config, kind
        weakref.finalize(self, worker.free, handle)

    def __repr__(self) -> str:
        return f"<{self.kind} #{self.handle} in the {self.worker.impl} worker (pid {self.worker.pid})>"


class _Handle:
    """A worker object as it crosses the socket: its number, its config and its type's name."""

    def __init__(self, handle: int, config: Any, kind: str) -> None:
        self.handle, self.config, self.kind = handle, config, kind


class _Channel:
    """Messages over a stream socket: a pickle (protocol 5) whose large buffers (array data) travel out of band.

    A message is a length-prefixed header (the pickle's size and each buffer's), the pickle, then each buffer.
    Pickling an array into the stream and reading it back in small chunks (``multiprocessing``'s
    ``Connection``) cost 0.1 s per 45 MB ResNet-18 state each way, more than the import or export itself.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, obj: Any) -> None:
        buffers: list[pickle.PickleBuffer] = []
        data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        raws = [b.raw() for b in buffers]
        head = struct.pack(f"!QI{len(raws)}Q", len(data), len(raws), *(r.nbytes for r in raws))
        self.sock.sendall(struct.pack("!I", len(head)) + head)
        self.sock.sendall(data)
        for r in raws:
            self.sock.sendall(r)

    def recv(self) -> Any:
        (n,) = struct.unpack("!I", self._exact(4))
        head = self._exact(n)
        size, count = struct.unpack_from("!QI", head)
        sizes = struct.unpack_from(f"!{count}Q", head, 12)
        data = self._exact(size)
        return pickle.loads(data, buffers=[self._exact(k) for k in sizes])

    def _exact(self, n: int) -> bytearray:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if k == 0:
                raise EOFError("the other end closed the socket")
            got += k
        return buf

    def close(self) -> None:
        self.sock.close()


class _Worker:
    def __init__(self, impl: str, env: dict[str, str]) -> None:
        self.impl = impl
        parent, child = socket.socketpair()
        # The worker finds this copy of resnet_core first, whatever put it on this process' path.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "resnet_core.remote", str(child.fileno())],
            env=env,
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the socket carries the results; stderr stays the user's
        )
        child.close()
        self.pid = self._proc.pid
        self._conn = _Channel(parent)
        self._lock = threading.Lock()
        self._freed: list[int] = []

    def start(self, framework: str, setup: tuple[str, ...]) -> None:
        """Ask the worker to import its package now; the reply is read by :meth:`attributes` (the imports overlap)."""
        self._conn.send(("attributes", framework, setup, {}, []))

    def attributes(self) -> dict[str, Any]:
        with self._lock:
            return self._reply("import")

    def free(self, handle: int) -> None:
        self._freed.append(handle)  # sent with the next request (a finalizer must not talk to the socket)

    def request(self, op: str, name: str, args: tuple, kwargs: dict) -> Any:
        with self._lock:
            freed, self._freed = self._freed, []
            try:
                self._conn.send((op, name, _to_wire(args), _to_wire(kwargs), freed))
            except OSError as e:
                raise self._died(name) from e
            return self._reply(name)

    def _died(self, name: str) -> RemoteError:
        code = self._proc.poll()
        return RemoteError(
            f"the {self.impl} worker process (pid {self.pid}) died"
            + (f" with exit code {code}" if code is not None else "")
            + f" during {name}(); its stderr above says why"
        )

    def _reply(self, name: str) -> Any:
        try:
            status, payload = self._conn.recv()
        except (EOFError, OSError) as e:
            raise self._died(name) from e
        if status == "ok":
            return _from_wire(payload, self)
        exc, kind, message, tb = payload
        if exc is None:
            exc = RemoteError(f"{kind}: {message}")
        if hasattr(exc, "add_note"):
            exc.add_note(f"raised in the {self.impl} worker process (pid {self.pid}):\n{tb}")
        raise exc

    def close(self) -> None:
        self.ask_to_exit()
        self.wait_for_exit()

    def ask_to_exit(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.send(None)
        with contextlib.suppress(Exception):
            self._conn.close()

    def wait_for_exit(self) -> None:
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _walk(obj: Any, leaf) -> Any:
    """``obj`` with ``leaf`` applied to everything that is not a tuple, list or dict (those are rebuilt)."""
    if isinstance(obj, tuple):
        return tuple(_walk(o, leaf) for o in obj)
    if isinstance(obj, list):
        return [_walk(o, leaf) for o in obj]
    if isinstance(obj, dict):
        return {k: _walk(v, leaf) for k, v in obj.items()}
    return leaf(obj)


def _to_wire(obj: Any) -> Any:
    return _walk(obj, lambda o: _Handle(o.handle, None, o.kind) if isinstance(o, RemoteModel) else o)


def _from_wire(obj: Any, worker: _Worker) -> Any:
    return _walk(obj, lambda o: RemoteModel(worker, o.handle, o.config, o.kind) if isinstance(o, _Handle) else o)


class RemotePackage:
    """``resnet_<framework>`` as it runs in a worker process: the same functions, models as handles."""

    _CONTEXTS = ("on_device", "tf32")

    def __init__(self, impl: str, framework: str, worker: _Worker, attributes: dict[str, Any]) -> None:
        self.IMPLEMENTATION, self.FRAMEWORK = impl, framework
        self._worker = worker
        for k, v in attributes.items():  # BACKEND and the like, read once
            setattr(self, k, v)

    def __repr__(self) -> str:
        return f"<resnet_{self.FRAMEWORK} in the {self.IMPLEMENTATION} worker process (pid {self._worker.pid})>"

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self._worker.pid

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._CONTEXTS:
            return lambda *args, **kwargs: self._context(name, args, kwargs)
        return lambda *args, **kwargs: self._worker.request("call", name, args, kwargs)

    @contextlib.contextmanager
    def _context(self, name: str, args: tuple, kwargs: dict) -> Iterator[Any]:
        key, value = self._worker.request("enter", name, args, kwargs)
        try:
            yield value
        finally:
            self._worker.request("exit", "", (key,), {})

    def config_of(self, model: Any) -> Any:
        if isinstance(model, RemoteModel) and model.config is not None:
            return model.config
        return self._worker.request("call", "config_of", (model,), {})


_workers: dict[str, tuple[_Worker, RemotePackage | None]] = {}
_start_lock = threading.Lock()


def package(impl: str, framework: str, env: dict[str, str], setup: tuple[str, ...] = ()) -> RemotePackage:
    """The worker of implementation ``impl`` (started on first use, with ``env``), as a package.

    ``setup``: functions of the package (dotted paths under it) the worker calls once after importing it.
    """
    start(impl, env, framework, setup)
    with _start_lock:
        worker, pkg = _workers[impl]
        if pkg is None:
            pkg = RemotePackage(impl, framework, worker, worker.attributes())
            _workers[impl] = (worker, pkg)
        return pkg


def start(impl: str, env: dict[str, str], framework: str, setup: tuple[str, ...] = ()) -> None:
    """Start ``impl``'s worker and its imports without waiting for them (several workers import at once)."""
    with _start_lock:
        if impl not in _workers:
            worker = _Worker(impl, env)
            worker.start(framework, setup)
            _workers[impl] = (worker, None)


def stop(impl: str) -> None:
    """Stop ``impl``'s worker (if running); the next :func:`package` starts a new one."""
    with _start_lock:
        entry = _workers.pop(impl, None)
    if entry is not None:
        entry[0].close()


@atexit.register
def shutdown() -> None:
    """Stop every worker process (at exit, or to free their memory)."""
    with _start_lock:
        for worker, _ in _workers.values():  # all at once: each takes a moment to exit
            worker.ask_to_exit()
        for worker, _ in _workers.values():
            worker.wait_for_exit()
        _workers.clear()


# --------------------------------------------------------------------------- the worker side
def _serve(fd: int) -> None:
    import importlib

    from . import collector

    conn = _Channel(socket.socket(fileno=fd))
    objects: dict[int, Any] = {}
    contexts: dict[int, Any] = {}
    counter = itertools.count(1)
    mod: Any = None

    def handle_of(value: Any) -> Any:
        config = getattr(value, "config", None)
        if config is None or type(value).__module__.split(".")[0] == "resnet_core":
            return value
        handle = next(counter)
        objects[handle] = value
        return _Handle(handle, config, type(value).__name__)

    def wrap(value: Any) -> Any:
        return _walk(value, handle_of)

    def unwrap(value: Any) -> Any:
        return _walk(value, lambda v: objects[v.handle] if isinstance(v, _Handle) else v)

    while True:
        try:
            msg = conn.recv()
        except (EOFError, ConnectionError):
            return
        if msg is None:  # asked to exit: nothing of ours is left to write, so skip the interpreter's teardown of
            sys.stdout.flush()  # the frameworks (about a second per worker)
            sys.stderr.flush()
            os._exit(0)
        op, name, args, kwargs, freed = msg
        for h in freed:
            objects.pop(h, None)
        try:
            if op == "attributes":
                with collector.loading_frameworks():  # a process of our own
                    mod = importlib.import_module(f"resnet_{name}")
                    for path in args:  # setup functions, e.g. "backends.keep_float64"
                        module, _, fn = f"resnet_{name}.{path}".rpartition(".")
                        getattr(importlib.import_module(module), fn)()
                result: Any = {k: getattr(mod, k) for k in ("BACKEND",) if hasattr(mod, k)}
            elif op == "call":
                result = wrap(getattr(mod, name)(*unwrap(args), **unwrap(kwargs)))
            elif op == "enter":
                cm = getattr(mod, name)(*unwrap(args), **unwrap(kwargs))
                key = next(counter)
                value = cm.__enter__()
                contexts[key] = cm
                result = (key, wrap(value))
            elif op == "exit":
                contexts.pop(args[0]).__exit__(None, None, None)
                result = None
            else:
                raise ValueError(f"unknown request {op!r}")
            reply: tuple = ("ok", result)
        except BaseException as e:  # every failure goes back to the caller
            try:
                pickle.loads(pickle.dumps(e))
                sendable: BaseException | None = e
            except Exception:
                sendable = None
            reply = ("err", (sendable, type(e).__name__, str(e), traceback.format_exc()))
        conn.send(reply)


if __name__ == "__main__":
    # Through the importable module, so that the classes crossing the socket are resnet_core.remote's, not __main__'s.
    from resnet_core.remote import _serve as serve

    serve(int(sys.argv[1]))
