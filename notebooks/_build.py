"""Build the teaching notebooks from their sources in ``notebooks/src/`` and execute them.

Each source is a plain Python script in jupytext's "percent" format: ``# %%`` starts a
code cell, ``# %% [markdown]`` a markdown cell whose lines are ``# ``-prefixed
comments. The script runs as is (``python notebooks/src/01_...py``); jupytext reads it,
and this tool writes ``notebooks/<same name>.ipynb`` with its outputs stored. Each
notebook declares the pairing (``jupytext.formats``), so ``jupytext --sync`` works too::

    python notebooks/_build.py            # every notebook
    python notebooks/_build.py 02         # the ones whose name starts with 02
    python notebooks/_build.py --no-execute

Each notebook runs in a fresh kernel that is shut down as soon as it finishes (or fails).
Stored outputs are kept small and stable: execution timestamps are dropped and
the C-level start-up lines TensorFlow and Paddle print whatever their log-level
variables say (oneDNN, absl, ccache) are removed from the stored copy only.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
import tempfile
import time

import jupytext
import nbformat

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE / "src"
# Start-up noise written straight to file descriptor 2 by native code; not the notebook's own output.
NOISE = re.compile(
    r"(oneDNN custom operations are on|All log messages before absl::InitializeLog|No ccache found|"
    r"warnings\.warn\(warning_message\)|cuda_(dnn|fft|blas)\.cc|computation placer already registered|"
    r"Unable to register cu(DNN|FFT|BLAS) factory|TF-TRT Warning)"
)
KERNEL_NAME = "resnet-parity-notebooks"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
PAIRING = "ipynb,src//py:percent"  # notebooks/<name>.ipynb <-> notebooks/src/<name>.py


def sources() -> list[pathlib.Path]:
    return sorted(SRC.glob("[0-9][0-9]_*.py"))


def cells(path: pathlib.Path) -> list[tuple[str, str]]:
    """``(cell_type, source)`` of each cell of a percent-format script, as jupytext reads it."""
    return [(c.cell_type, c.source) for c in jupytext.read(path, fmt="py:percent").cells]


def notebook(path: pathlib.Path) -> nbformat.NotebookNode:
    """The unexecuted notebook of one source script, paired with it by jupytext's metadata."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["jupytext"] = {"formats": PAIRING}
    for kind, src in cells(path):  # fresh cells: jupytext's layout hints (lines_to_next_cell) are not stored
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{path.stem[:2]}-{i:03d}"  # stable ids keep diffs small
    return nb


def _visible_text(data: dict) -> str:
    if any(not k.startswith("text/") for k in data):
        return "image or other media"
    return "".join(re.sub(r"<[^>]*>", "", str(v)).strip() for v in data.values())


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop timestamps and native start-up noise from the outputs of an executed notebook."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.outputs:
            if out.output_type == "display_data" and not _visible_text(out.get("data", {})):
                continue  # e.g. the empty <pre> rich emits when Keras' summary() goes to print_fn
            if out.output_type == "stream" and out.name == "stderr":
                lines = [line for line in out.text.splitlines(keepends=True) if not NOISE.search(line)]
                if not "".join(lines).strip():
                    continue
                out.text = "".join(lines)
            kept.append(out)
        cell.outputs = kept
    return nb


def execute(nb: nbformat.NotebookNode, cwd: pathlib.Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run every cell top to bottom in a fresh kernel of this interpreter; raises on the first error.

    The kernel spec is written to a temporary folder and names ``sys.executable``, so
    the notebooks run in this environment whatever kernels the machine has registered.
    The kernel is shut down here, whatever happened: nbclient shuts down only kernels
    whose manager it created, and a passed-in manager left each kernel (a whole
    process with three frameworks loaded; about 8 GB for the suite's three, as the issue
    reports) alive until the interpreter exited.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as kernels:
        (pathlib.Path(kernels) / KERNEL_NAME).mkdir()
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        spec = {"argv": argv, "display_name": KERNEL_NAME, "language": "python"}
        (pathlib.Path(kernels) / KERNEL_NAME / "kernel.json").write_text(json.dumps(spec))
        km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]))
        try:
            NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(cwd)}}).execute()
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    return nb


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("prefix", nargs="*", help="build only notebooks whose name starts with one of these")
    p.add_argument("--no-execute", action="store_true", help="write the notebooks without outputs")
    args = p.parse_args(argv)
    chosen = [s for s in sources() if not args.prefix or any(s.name.startswith(x) for x in args.prefix)]
    if not chosen:
        print(f"_build.py: error: no source in {SRC} matches {args.prefix}", file=sys.stderr)
        return 2
    for src in chosen:
        nb = notebook(src)
        if not args.no_execute:
            t = time.perf_counter()
            nb = clean(execute(nb, HERE))
            print(f"{src.stem}: executed in {time.perf_counter() - t:.1f} s")
        dst = HERE / f"{src.stem}.ipynb"
        nbformat.validate(nb)
        nbformat.write(nb, dst)
        print(f"{src.stem}: wrote {dst.relative_to(HERE.parent)} ({dst.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
