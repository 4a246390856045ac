"""Project-wide pytest set-up: which notebooks nbval runs, figure comparison, the test tiers, and the report of
each notebook's run time against its budget."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest
from nbval.plugin import IPyNbCell

from tools.execute_notebooks import NOTEBOOK_BUDGET_S, budget_line, prepare_kernel_environment
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


# nbval's compare_outputs is private API: tests/test_nbval_guard.py fails, saying what to do, when an nbval other than
# the pinned one is installed or the method this relies on changes.
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


# --- test tiers ------------------------------------------------------------------------------------------------------
# Every test gets one tier marker (registered in pyproject.toml), so that `pytest -m unit` (`make test-fast`)
# selects the fast tests and a new test file needs no marker. A marker the test sets itself wins; otherwise:
# nbval's cells are `notebooks`, a test that uses the `site` fixture (the built book) is `site`, the table below
# places what the file alone does not say, and everything else is `unit`. Browser tests are marked `site` too (they
# need the build), so `-m site` selects both.
TIERS = ("unit", "slow", "notebooks", "site", "browser")
PLACED = {  # a test file, or one test (file::name), whose tier its fixtures do not show; tests/test_tiers.py checks
    "tests/test_browser.py": "browser",
    "tests/test_site.py": "site",
    # nbgrader's generate_assignment and autograde, three submissions each run in a kernel: about 40 s
    "tests/test_assignments.py::test_nbgrader_autograde_grades_submissions_end_to_end": "slow",
    # builds a two-page book twice with jupyter-book (Sphinx): about 8 s
    "tests/test_assignments.py::test_site_without_solutions_hides_them_and_default_collapses_them": "site",
    # each test starts a Python that imports PyTorch, TensorFlow and Keras: about 7 s each
    "tests/test_environment.py": "slow",
    # re-runs one stored run of every sweep in the experiment store: about a minute
    "tests/test_stored_results.py": "slow",
    # kills a running sweep twice and resumes it; runs the paper-scale sweeps tiny: about 20 s
    "tests/test_store.py::test_a_killed_build_keeps_its_finished_runs_and_resumes": "slow",
    "tests/test_store.py::test_the_smoke_mode_runs_every_paper_scale_sweep_tiny": "slow",
}


def tier_of(item: pytest.Item) -> str:
    """The tier of one collected test (see TIERS and PLACED above)."""
    explicit = [mark.name for mark in item.iter_markers() if mark.name in TIERS]
    if explicit:
        return explicit[0]
    if isinstance(item, IPyNbCell):
        return "notebooks"
    nodeid = item.nodeid.split("[")[0]
    for key, tier in PLACED.items():
        if nodeid == key or nodeid.startswith(key + "::"):
            return tier
    return "site" if "site" in getattr(item, "fixturenames", ()) else "unit"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its tier; refuse a fast-tier test that would build the site."""
    for item in items:
        tier = tier_of(item)
        if tier in ("unit", "slow") and "site" in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(f"{item.nodeid} is marked {tier} but uses the `site` fixture, which builds the "
                                    "whole book: remove its tier marker (it is then `site`)")
        if not item.get_closest_marker(tier):
            item.add_marker(tier)
        if tier == "browser" and not item.get_closest_marker("site"):
            item.add_marker("site")


# --- notebook run times -------------------------------------------------------------------------------------------


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
    """Report each notebook's run time beside its budget, and which are over. A report, never a failure: run times
    depend on the machine and on what else it runs."""
    if not _notebook_seconds:
        return
    terminalreporter.section("notebook run times (a report: a notebook over its budget does not fail the run)")
    for name, seconds in _notebook_seconds.items():
        terminalreporter.write_line(budget_line(name, seconds))
    over = [name for name, seconds in _notebook_seconds.items() if seconds > NOTEBOOK_BUDGET_S]
    if over:
        terminalreporter.write_line(f"{len(over)} notebook(s) over the {NOTEBOOK_BUDGET_S:.0f} s budget: "
                                    f"{', '.join(over)}", yellow=True, bold=True)
