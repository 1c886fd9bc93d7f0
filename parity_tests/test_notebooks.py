"""The teaching notebooks: each one runs top to bottom on the CPU, and the stored copies stay small.

Execution uses a fresh kernel of this interpreter (``notebooks/_build.py`` writes a
temporary kernel spec naming ``sys.executable``), so it needs no registered kernel.
A notebook fails on its first error, including the ``assert`` cells that check
every claim its text makes.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import pathlib
import time

import pytest

from resnet_core import frameworks

from .helpers import IN_REPOSITORY, REPO

pytestmark = pytest.mark.notebooks
if not IN_REPOSITORY:
    pytest.skip(
        f"needs the repository checkout (notebooks/ and docs/); running from the installed package in {REPO}",
        allow_module_level=True,
    )
ROOT = REPO
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = [
    "01_one_resnet_three_frameworks",
    "02_framework_differences",
    "03_porting_weights",
    "04_training_recipes",
]
# The limits: each notebook runs in under 5 minutes on the CPU, and its stored
# outputs stay small (a few small PNGs and short tables, no tensors or logs).
MAX_SECONDS = 300
MAX_FILE_BYTES = 300_000
MAX_TEXT_OUTPUT_BYTES = 20_000  # one output's text: a clipped summary is ~10 kB, a tensor dump is far more
MAX_IMAGE_BYTES = 100_000


def _build_module():
    for module in ("nbformat", "jupytext"):
        pytest.importorskip(module, reason=f"the notebook tests need {module}: pip install 'resnet-parity[test]'")
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build_module()


def _stored(name: str) -> dict:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())


def test_every_notebook_has_a_source_and_a_stored_copy():
    assert [s.stem for s in build.sources()] == EXPECTED
    assert sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) == EXPECTED


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_top_to_bottom(name):
    missing = [f for f in ("torch", "keras", "paddle") if not frameworks.installed(f)]
    if missing:
        pytest.skip(
            f"the notebooks need all three frameworks; not installed: {missing} (pip install 'resnet-parity[all]')"
        )
    pytest.importorskip(
        "nbclient", reason="executing notebooks needs nbclient and ipykernel: pip install 'resnet-parity[test]'"
    )
    pytest.importorskip(
        "ipykernel", reason="executing notebooks needs nbclient and ipykernel: pip install 'resnet-parity[test]'"
    )
    if name == "04_training_recipes":
        from resnet_core.recipes import data

        try:
            data.digits_path()
        except (ImportError, FileNotFoundError) as e:
            pytest.skip(f"{name} trains on scikit-learn's digits: {e}")
    nb = build.notebook(build.SRC / f"{name}.py")
    start = time.perf_counter()
    build.execute(nb, NOTEBOOKS, timeout=MAX_SECONDS)  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - start
    assert elapsed < MAX_SECONDS, f"{name} took {elapsed:.0f} s, the limit is {MAX_SECONDS} s"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors


def _kernel_processes() -> list[int]:
    """This process's children running an ipykernel (read from /proc: no extra dependency)."""
    found = []
    for proc in pathlib.Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == os.getpid() and b"ipykernel_launcher" in cmdline:
            found.append(int(proc.name))
    return found


def test_kernel_is_shut_down_after_each_notebook(tmp_path):
    """execute() leaves no kernel running, after a notebook that passes and after one that fails.

    Before the fix each kernel (a process with three frameworks loaded) lived until pytest exited.
    """
    pytest.importorskip("nbclient", reason="executing notebooks needs nbclient: pip install 'resnet-parity[test]'")
    pytest.importorskip("ipykernel", reason="executing notebooks needs ipykernel: pip install 'resnet-parity[test]'")
    if not pathlib.Path("/proc/self/stat").exists():
        pytest.skip("counting kernel processes reads /proc (Linux)")
    nbformat = pytest.importorskip("nbformat")
    assert _kernel_processes() == []
    ok = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\nprint(os.getpid())")])
    build.execute(ok, tmp_path, timeout=120)
    kernel_pid = int(ok.cells[0].outputs[0]["text"])
    assert kernel_pid != os.getpid()  # the cell ran in a kernel process, which this test can see
    assert _kernel_processes() == [], "a kernel is still running after a notebook that passed"
    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise RuntimeError('cell fails')")])
    with pytest.raises(Exception, match="cell fails"):
        build.execute(bad, tmp_path, timeout=120)
    assert _kernel_processes() == [], "a kernel is still running after a notebook that failed"


@pytest.mark.parametrize("name", EXPECTED)
def test_stored_notebook_matches_its_source(name):
    """The .ipynb is paired with notebooks/src/<name>.py by jupytext: edit the source, then run notebooks/_build.py."""
    stored = _stored(name)
    assert stored["metadata"].get("jupytext", {}).get("formats") == build.PAIRING
    assert [(c["cell_type"], "".join(c["source"])) for c in stored["cells"]] == build.cells(build.SRC / f"{name}.py")


@pytest.mark.parametrize("name", EXPECTED)
def test_stored_outputs_are_small_and_complete(name):
    path = NOTEBOOKS / f"{name}.ipynb"
    assert path.stat().st_size < MAX_FILE_BYTES, f"{path.name} is {path.stat().st_size:,} bytes"
    code = [c for c in _stored(name)["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), (
        "not executed top to bottom in one run"
    )
    for i, cell in enumerate(code, start=1):
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"cell {i} stored an error: {out.get('ename')}: {out.get('evalue')}"
            texts = [out.get("text", "")] + [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
            size = sum(len("".join(t)) for t in texts)
            assert size < MAX_TEXT_OUTPUT_BYTES, f"cell {i} stores {size:,} characters of text"
            image = out.get("data", {}).get("image/png", "")
            assert len(image) < MAX_IMAGE_BYTES, f"cell {i} stores a {len(image):,}-byte image"


def _catalog_rows() -> list[str]:
    """The first column of docs/framework-differences.md's first table, one entry per difference.

    The second table (between the Keras backends) is proved by test_keras_backends.py in one process per
    backend; the notebook runs in one process, on one backend."""
    rows = []
    text = (ROOT / "docs" / "framework-differences.md").read_text()
    for line in text.split("## Between the Keras 3 backends")[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and not set(line) <= set("|-: ") and cells[0] != "Difference":
            rows.append(cells[0])
    return rows


def test_notebook_02_measures_every_catalog_row():
    """The stored notebook 02 ends with a table of measured numbers; every catalog row has at least one."""
    catalog = _catalog_rows()
    assert len(catalog) >= 20, catalog  # the catalog's table was found and parsed
    summary = None
    for cell in _stored("02_framework_differences")["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("data", {}).get("text/markdown", ""))
            if text.startswith("| catalog row | measured | number |"):
                summary = text
    assert summary is not None, "notebook 02 has no stored summary table: run notebooks/_build.py 02"
    measured: dict[str, list[str]] = {}
    for line in summary.splitlines()[2:]:
        row, _what, number = (c.strip() for c in line.strip().strip("|").rsplit("|", 2))
        measured.setdefault(row, []).append(number)
    missing = [r for r in catalog if r not in measured]
    stale = [r for r in measured if r not in catalog]
    assert not missing and not stale, (
        f"catalog rows without a number: {missing}; rows no longer in the catalog: {stale}"
    )
    assert all(any(c.isdigit() for c in n) for numbers in measured.values() for n in numbers)


@pytest.mark.parametrize("name", EXPECTED)
def test_notebooks_do_not_redefine_the_models(name):
    """Models come from the packages: no notebook subclasses a framework's module, layer or model class."""
    bases = {"Module", "Layer", "Model", "Sequential", "Functional"}
    for kind, src in build.cells(build.SRC / f"{name}.py"):
        if kind != "code":
            continue
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ClassDef):
                names = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases}
                assert not names & bases, f"{name} defines class {node.name}({', '.join(sorted(names))})"
