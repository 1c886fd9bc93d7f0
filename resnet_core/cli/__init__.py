"""``resnet-parity``: the command line. Each subcommand lives in its own module of this package.

The modules hold argparse and printing only; the work is done by the core packages they call.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import sys

from .. import frameworks, runtime

# subcommand -> (module, one-line help). Modules are imported only when their command runs,
# so `convert` between canonical files imports no framework at all.
COMMANDS = {
    "report": ("resnet_core.cli.report", "run the parity matrix and write the report (the main job)"),
    "summary": ("resnet_core.cli.summary", "the models side by side: counts and shapes in each framework"),
    "convert": ("resnet_core.cli.convert", "port a weights file between formats and frameworks"),
    "inspect": ("resnet_core.cli.inspect", "print what a weights file holds"),
    "verify": ("resnet_core.cli.verify", "check a port on your own weights, layer by layer, in every framework"),
    "train": ("resnet_core.cli.train", "train a seed's recipe side by side in each framework; chart and table"),
    "bench": ("resnet_core.cli.bench", "measure throughput against each framework's own reference"),
    "test": ("resnet_core.cli.test", "run the installed parity suite (pytest; the other arguments go to pytest)"),
}


class CLIError(Exception):
    """An error whose message is shown to the user as is, on one line."""


def _parser(command: str | None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported, so one broken subcommand can't break the others."""
    p = argparse.ArgumentParser(prog="resnet-parity", description=__doc__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(_module=module)
        if name == command:
            importlib.import_module(module).add_arguments(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    set_aside = runtime.own_keras_backend()  # before any subcommand imports Keras
    if set_aside:
        print(f"resnet-parity: {frameworks.set_aside_note(set_aside)}", file=sys.stderr)
    command = next((a for a in argv if not a.startswith("-")), None)
    if argv[:1] == ["test"]:  # everything after `test` is pytest's, options included (argparse would claim them)
        args = argparse.Namespace(command="test", _module=COMMANDS["test"][0], pytest_args=argv[1:])
    else:
        args = _parser(command).parse_args(argv)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except KeyboardInterrupt:
        print("resnet-parity: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, OSError, ImportError, RuntimeError) as e:
        msg = " ".join(str(e).split())  # one line, whatever the library wrote
        print(f"resnet-parity {args.command}: error: {msg}", file=sys.stderr)
        return 2


def entry() -> None:
    """The ``resnet-parity`` console script: :func:`main`, then an exit that skips the interpreter's teardown.

    Once every atexit handler has run (the worker processes stopped, temporary folders removed) and the output is
    flushed, nothing of the process is still needed; tearing down the modules of TensorFlow, Paddle and PyTorch took
    1.7 s of a 31 s ``report --quick`` (measured), so the process ends there. An exception leaves as usual.
    """
    rc = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be shown anyway
            stream.flush()
    os._exit(rc)


if __name__ == "__main__":
    entry()
