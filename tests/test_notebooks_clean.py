"""The notebooks are committed without outputs, and they run on the venv's own kernel.

pytest executes them (nbmake, see pyproject.toml); these checks only read them, so a notebook
saved with its outputs fails fast. Strip outputs with ``.venv/bin/nbstripout notebooks/*.ipynb``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def test_the_documented_notebooks_exist() -> None:
    names = {path.name for path in NOTEBOOKS}
    assert {"quickstart.ipynb", "planners.ipynb", "own_environment.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_and_stripped(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.name}: code cells {dirty} have outputs or execution counts; "
        f"strip them with `.venv/bin/nbstripout {path.relative_to(NOTEBOOKS_DIR.parent)}`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_the_default_python_kernel(path: Path) -> None:
    """``python3`` is ipykernel's own spec in the venv: nbmake runs it on the interpreter that
    runs pytest, so no user-level kernel has to be installed."""
    kernel = nbformat.read(path, as_version=4).metadata.get("kernelspec", {}).get("name")
    assert kernel == "python3", f"{path.name}: kernelspec {kernel!r}, expected 'python3'"
