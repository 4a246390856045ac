"""Project-wide pytest set-up: which notebooks nbval runs, figure comparison, and the per-notebook time budget."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest
from nbval.plugin import IPyNbCell

from tools.execute_notebooks import NOTEBOOK_BUDGET_S, prepare_kernel_environment
from tools.nbimages import PNG_KEYS, compare_pngs
from tools.toc import toc_notebooks

TOC_NOTEBOOKS = {path.resolve() for path in toc_notebooks()}
_notebook_seconds: dict[str, float] = defaultdict(float)


def pytest_configure(config: pytest.Config) -> None:
    """Give nbval's kernels the same environment `make notebooks` gives its kernels."""
    prepare_kernel_environment()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Run only the notebooks in _toc.yml; tests/test_toc.py reports any notebook missing from it."""
    if collection_path.suffix == ".ipynb":
        return collection_path.resolve() not in TOC_NOTEBOOKS
    return None


_compare_text_outputs = IPyNbCell.compare_outputs


def _compare_outputs_and_figures(self: IPyNbCell, test, ref, skip_compare=None) -> bool:
    """nbval's comparison of everything but figures, then the figures, with a tolerance for anti-aliasing."""
    skip = tuple(skip_compare or self.parent.skip_compare) + PNG_KEYS
    if not _compare_text_outputs(self, test, ref, skip):
        return False
    problems = compare_pngs(test, ref)
    self.comparison_traceback.extend(problems)
    return not problems


IPyNbCell.compare_outputs = _compare_outputs_and_figures


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Add each notebook cell's run time to its notebook's total."""
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        if isinstance(item, IPyNbCell):
            _notebook_seconds[item.path.name] += time.perf_counter() - start


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Print each notebook's run time against the budget."""
    if not _notebook_seconds:
        return
    terminalreporter.section(f"notebook run times (budget {NOTEBOOK_BUDGET_S:.0f} s each)")
    for name, seconds in _notebook_seconds.items():
        flag = "  OVER BUDGET" if seconds > NOTEBOOK_BUDGET_S else ""
        terminalreporter.write_line(f"{seconds:7.1f} s  {name}{flag}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a notebook takes longer than its budget."""
    if any(seconds > NOTEBOOK_BUDGET_S for seconds in _notebook_seconds.values()) and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
