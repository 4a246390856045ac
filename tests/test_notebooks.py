"""Stored notebooks are what a top-to-bottom run of the current code produced.

nbval re-executes every notebook and compares text and (through conftest.py) figures. These checks cover what
re-execution cannot see: that the stored run went top to bottom in one fresh kernel, without errors. The last test
re-runs two chapters pinned to one CPU core (tier `notebooks`; the others here only read the stored files).
"""

import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from tools.toc import ROOT, toc_notebooks

NOTEBOOKS = toc_notebooks()
# Re-run on one CPU core as well: a chapter that trains with PyTorch (its numbers once depended on the core count)
# and one that trains with Keras on TensorFlow. About 20 and 30 s on a loaded 2-core machine.
ONE_CORE_NOTEBOOKS = ("chapters/mc_dropout.ipynb", "chapters/tutorials_offline.ipynb")


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
    """Code after a chapter's "## Exercises" heading either works out answers (tagged `solution`: a build without
    solutions drops it, and tests/test_reader_pages.py keeps it out of view) or shows what a question needs (tagged
    `exercise`: the data or the code the reader starts from)."""
    notebook = nbformat.read(path, as_version=4)
    headings = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "markdown"
                and any(line.strip() == "## Exercises" for line in cell.source.splitlines())]
    if not headings:
        return
    untagged = [i for i, cell in enumerate(notebook.cells) if i > headings[0] and cell.cell_type == "code"
                and not {"solution", "exercise"} & set(cell.metadata.get("tags", []))]
    assert not untagged, f"cells {untagged} follow the Exercises heading but are tagged neither solution nor exercise"


def _one_core() -> list[str]:
    """The command prefix that pins a process and its children (the kernel) to one CPU core; skip where there is
    none: taskset is Linux's (util-linux)."""
    taskset = shutil.which("taskset")
    if taskset is None or not hasattr(os, "sched_getaffinity"):
        pytest.skip("taskset (Linux, util-linux) is not installed: cannot pin the notebook to one CPU core")
    core = str(min(os.sched_getaffinity(0)))  # a core this process may use (in a container it need not be 0)
    count_cores = "import os; print(len(os.sched_getaffinity(0)))"
    probe = subprocess.run([taskset, "-c", core, sys.executable, "-c", count_cores], capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != "1":
        pytest.skip(f"taskset -c {core} could not pin a process to one core here: {probe.stderr.strip()[-300:]}")
    return [taskset, "-c", core]


@pytest.mark.notebooks
@pytest.mark.parametrize("notebook", ONE_CORE_NOTEBOOKS)
def test_outputs_are_the_same_on_one_cpu_core(notebook):
    """nbval re-runs the notebook pinned to one core and compares with its stored outputs, which come from a
    machine with several. With the main nbval run on all cores, that shows the numbers do not depend on the core
    count (utils.setup runs PyTorch and TensorFlow on one thread)."""
    assert notebook in {str(path.relative_to(ROOT)) for path in NOTEBOOKS}, f"{notebook} is not in _toc.yml"
    command = [*_one_core(), sys.executable, "-m", "pytest", notebook, "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (
        f"{notebook} re-run on one CPU core (`{' '.join(command[:3])} pytest {notebook}`) differs from its stored "
        f"outputs, or fails. If the main nbval run passes, the outputs depend on the core count: look for a "
        f"framework running on several threads.\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}")
