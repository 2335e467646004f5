"""Every notebook in notebooks/ (jupytext percent format) executes without an error.

Each notebook is converted with jupytext and run with nbclient on the ``python3`` kernel; an
error in any cell fails the test with that cell's traceback. The notebooks are kept as text,
never with outputs.
"""
import time
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
# Notebooks that need the kernels or torch and take longest run in the slow pass.
SLOW = {"06_kernels_vs_pytorch.py"}


def _notebooks():
    out = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")):
        marks = [pytest.mark.slow] if path.name in SLOW else []
        out.append(pytest.param(path, id=path.stem, marks=marks))
    return out


def execute(path: Path):
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(path)
    client = NotebookClient(nb, kernel_name="python3", timeout=240,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


@pytest.mark.parametrize("path", _notebooks())
def test_notebook_executes(path):
    start = time.perf_counter()
    nb = execute(path)
    took = time.perf_counter() - start
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells, f"{path.name} has no code"
    errors = [o for c in code_cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    assert took < 120, f"{path.name} took {took:.0f} s"


def test_notebooks_are_text_without_outputs():
    for path in NOTEBOOKS.glob("*"):
        assert path.suffix != ".ipynb", f"{path.name}: keep notebooks as jupytext .py files"
    for path in NOTEBOOKS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "format_name: percent" in text, f"{path.name} is not jupytext percent format"
