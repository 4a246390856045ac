"""`make notebooks` stores a fresh top-to-bottom run, leaves a notebook untouched when its run fails, and reports
run times against the budget without failing on them."""

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from tools import execute_notebooks
from tools.execute_notebooks import NOTEBOOK_BUDGET_S, budget_line, execute


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


def test_budget_line_puts_the_budget_beside_the_time_and_flags_overruns():
    assert budget_line("a.ipynb", 41.26, budget=90) == "   41.3 s of 90 s  a.ipynb"
    assert budget_line("b.ipynb", 90.5, budget=90) == "   90.5 s of 90 s  b.ipynb  OVER BUDGET"


def test_a_notebook_over_its_budget_is_reported_not_an_error(tmp_path, monkeypatch, capsys):
    """Run times depend on the machine and its load, so `make notebooks` reports them and fails only on errors."""
    paths = [_notebook(tmp_path / name, "pass") for name in ("fast.ipynb", "slow.ipynb")]
    times = {"fast.ipynb": 1.0, "slow.ipynb": NOTEBOOK_BUDGET_S + 30}
    monkeypatch.setattr(execute_notebooks, "ROOT", tmp_path)
    monkeypatch.setattr(execute_notebooks, "execute", lambda path: times[path.name])
    assert execute_notebooks.main([str(path) for path in paths]) == 0
    out = capsys.readouterr().out
    assert f"1.0 s of {NOTEBOOK_BUDGET_S:.0f} s  fast.ipynb\n" in out
    assert f"{NOTEBOOK_BUDGET_S + 30:.1f} s of {NOTEBOOK_BUDGET_S:.0f} s  slow.ipynb  OVER BUDGET" in out
    assert "1 notebook(s) over the" in out and "slow.ipynb" in out.splitlines()[-1]
