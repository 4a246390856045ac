"""Stored notebooks are what a top-to-bottom run of the current code produced.

nbval re-executes every notebook and compares text and (through conftest.py) figures. These checks cover what
re-execution cannot see: that the stored run went top to bottom in one fresh kernel, without errors.
"""

import nbformat
import pytest

from tools.toc import ROOT, toc_notebooks

NOTEBOOKS = toc_notebooks()


def _code_cells(path):
    notebook = nbformat.read(path, as_version=4)
    return [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_stored_run_went_top_to_bottom_in_one_kernel(path):
    counts = [cell.execution_count for cell in _code_cells(path)]
    assert counts, "a chapter notebook should run some code"
    assert counts == list(range(1, len(counts) + 1)), (
        f"execution counts {counts} are not 1..{len(counts)}: run `make notebooks` to store a fresh top-to-bottom run")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_unexpected_errors_are_stored(path):
    for index, cell in enumerate(_code_cells(path), start=1):
        errors = [out for out in cell.outputs if out.output_type == "error"]
        if errors:
            assert "raises-exception" in cell.metadata.get("tags", []), (
                f"code cell {index} stores an error ({errors[0].ename}) but is not tagged raises-exception")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_uses_the_environment_kernel(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_exercise_answer_cells_are_tagged_solution(path):
    """Code after a chapter's "## Exercises" heading works out answers, so a build without solutions must drop it."""
    notebook = nbformat.read(path, as_version=4)
    headings = [i for i, cell in enumerate(notebook.cells)
                if cell.cell_type == "markdown" and any(line.strip() == "## Exercises" for line in cell.source.splitlines())]
    if not headings:
        return
    untagged = [i for i, cell in enumerate(notebook.cells) if i > headings[0] and cell.cell_type == "code"
                and "solution" not in cell.metadata.get("tags", [])]
    assert not untagged, f"cells {untagged} follow the Exercises heading but are not tagged solution"
