"""`make notebooks` stores a fresh top-to-bottom run, and leaves a notebook untouched when its run fails."""

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from tools.execute_notebooks import execute


def _notebook(path, *sources):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, path)
    return path


def test_a_successful_run_is_stored_in_order(tmp_path):
    path = _notebook(tmp_path / "ok.ipynb", "x = 6 * 7", "print(x)", "import utils; utils.__name__")
    path.chmod(0o644)
    execute(path)
    assert path.stat().st_mode & 0o777 == 0o644  # permissions survive the atomic replace
    cells = nbformat.read(path, as_version=4).cells
    assert [cell.execution_count for cell in cells] == [1, 2, 3]
    assert cells[1].outputs[0].text == "42\n"
    assert cells[2].outputs[0].data["text/plain"] == "'utils'"  # utils imports with no path set-up
    assert "execution" not in cells[0].metadata  # no timing metadata to churn diffs
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_failing_run_leaves_the_notebook_untouched(tmp_path):
    path = _notebook(tmp_path / "bad.ipynb", "print('fine')", "raise ValueError('boom')")
    before = path.read_bytes()
    with pytest.raises(CellExecutionError, match="boom"):
        execute(path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]
