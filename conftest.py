"""Project-wide pytest set-up: which notebooks nbval runs, figure comparison, the test tiers, how a run spread over
several cores (pytest-xdist, `make test`) shares out the tests, and the report of each notebook's run time against
its budget."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest
from nbval.plugin import IPyNbCell
from xdist.scheduler import LoadScopeScheduling

from tools.execute_notebooks import NOTEBOOK_BUDGET_S, budget_line, prepare_kernel_environment
from tools.nbimages import PNG_KEYS, compare_pngs
from tools.outputs_cpu import cpu_model, output_kinds, stored_cpu
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
THIS_CPU = cpu_model()
OTHER_CPU = "other_cpu"  # a report property: (notebook name, CPU model its outputs were stored on)
_other_cpu_notebooks: dict[str, str] = {}


def _compare_outputs_and_figures(self: IPyNbCell, test, ref, skip_compare=None) -> bool:
    """nbval's comparison of everything but figures, then the figures, with a tolerance for anti-aliasing; for
    outputs stored on another CPU model, what the outputs are but not their content (tools/outputs_cpu.py says why)."""
    skip = tuple(skip_compare or self.parent.skip_compare) + PNG_KEYS
    stored_on = stored_cpu(Path(self.path))
    if stored_on is not None and stored_on != THIS_CPU:
        self.user_properties.append((OTHER_CPU, (self.path.name, stored_on)))
        fresh, stored = output_kinds(test), output_kinds(ref)
        self.comparison_traceback = []
        if fresh != stored:
            self.comparison_traceback.append(f"the cell's outputs are {fresh}, where {stored} are stored")
        return fresh == stored
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
    """Mark every test with its tier; refuse a fast-tier test that would build the site. In a worker of a run spread
    over several cores, put the longest work first (see start_rank)."""
    for item in items:
        tier = tier_of(item)
        if tier in ("unit", "slow") and "site" in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(f"{item.nodeid} is marked {tier} but uses the `site` fixture, which builds the "
                                    "whole book: remove its tier marker (it is then `site`)")
        if not item.get_closest_marker(tier):
            item.add_marker(tier)
        if tier == "browser" and not item.get_closest_marker("site"):
            item.add_marker("site")
    if hasattr(config, "workerinput"):  # an xdist worker: every worker collects, and must order, the same way
        items.sort(key=start_rank)


# --- a run spread over several cores --------------------------------------------------------------------------------
# `make test` runs `pytest -n auto`: one pytest-xdist worker process per core. The scheduler below hands out the
# tests: a notebook's nbval cells together to one worker (they run in order in one kernel), the site's own test files
# together to one worker (the site is built once, and the browser module's page visits happen once; any other test
# of the built site waits, under a lock, for that one build: tests/conftest.py), every other test alone to whichever
# worker is free. Work goes out in the order the workers collect it, which start_rank makes longest first, so that
# the workers finish together: the site group, the notebooks, the slow tier, other site tests, then the unit tier.
# xdist's own `--dist loadgroup` would do the grouping, but with pytest 9.2 it silently does not (xdist issue #1386).
SITE_GROUP = "site"
SITE_FILES = tuple(key for key, tier in PLACED.items() if "::" not in key and tier in ("site", "browser"))
START_ORDER = ("notebooks", "slow", "site", "browser", "unit")


def worker_group(nodeid: str) -> str | None:
    """The group of tests that one test must run with on one worker: its notebook for an nbval cell, `site` for a
    test in the site's own test files, None for a test that may run on any worker."""
    path = nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        return path
    return SITE_GROUP if path in SITE_FILES else None


def start_rank(item: pytest.Item) -> int:
    """Where a test's work goes out in a spread run: 0 for the site group, then by tier (START_ORDER)."""
    if worker_group(item.nodeid) == SITE_GROUP:
        return 0
    tier = next(name for name in START_ORDER if item.get_closest_marker(name))
    return 1 + START_ORDER.index(tier)


class BookScheduling(LoadScopeScheduling):
    """xdist's scope scheduler, with worker_group as the scope: one test alone unless it is in a group."""

    def __init__(self, config: pytest.Config, log=None) -> None:
        super().__init__(config, log)
        config.option.loadscopereorder = False  # keep the order start_rank gave, not the largest groups first

    def _split_scope(self, nodeid: str) -> str:
        return worker_group(nodeid) or nodeid


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before xdist's own choice from --dist
def pytest_xdist_make_scheduler(config: pytest.Config, log) -> BookScheduling:
    """Hand out the tests of a spread run with BookScheduling, whatever --dist says."""
    return BookScheduling(config, log)


# --- notebook run times, and other end-of-run reports ------------------------------------------------------------
# A test leaves what the end of the run should report in its report's user_properties: those reach the process that
# prints the summary, in a spread run too, where the tests run in worker processes and the controller prints.
NOTEBOOK_SECONDS = "notebook_seconds"  # (notebook name, seconds one nbval cell took)
SUMMARY = "summary"  # (section title, lines): how tests/test_browser.py reports the site's size and slowest page
_summaries: dict[str, list[str]] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Record each notebook cell's run time, for its notebook's total."""
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        if isinstance(item, IPyNbCell):
            item.user_properties.append((NOTEBOOK_SECONDS, (item.path.name, time.perf_counter() - start)))


_tier_seconds: dict[str, float] = defaultdict(float)
_TIER_REPORT_ORDER = ("browser", "notebooks", "slow", "site", "unit")  # browser tests are `site` too: browser first


def report_tier(report: pytest.TestReport) -> str:
    """The tier of the test a report is about, from its markers (browser before site)."""
    return next((tier for tier in _TIER_REPORT_ORDER if tier in report.keywords), "unit")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add up each tier's time; collect the run times and report lines that a test's call left in its report."""
    _tier_seconds[report_tier(report)] += report.duration  # set-up, call and teardown: a fixture's build counts
    if report.when != "call":  # the teardown report carries the same properties again
        return
    for name, value in report.user_properties:
        if name == NOTEBOOK_SECONDS:
            notebook, seconds = value
            _notebook_seconds[notebook] += seconds
        elif name == SUMMARY:
            title, lines = value
            _summaries[title] = list(lines)
        elif name == OTHER_CPU:
            notebook, stored_on = value
            _other_cpu_notebooks[notebook] = stored_on


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Report each tier's share of the test time, each notebook's run time beside its budget, and which are over. A
    report, never a failure: run times depend on the machine and on what else it runs. Then the other reports tests
    left (see SUMMARY)."""
    total = sum(_tier_seconds.values())
    if total > 0:
        terminalreporter.section("test time by tier (summed over the workers, so more than the wall time when spread)")
        for tier in TIERS:
            if _tier_seconds.get(tier):
                terminalreporter.write_line(f"{tier:<10} {_tier_seconds[tier]:7.0f} s  "
                                            f"{_tier_seconds[tier] / total:4.0%}")
    for title, lines in _summaries.items():
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line)
    if _other_cpu_notebooks:
        terminalreporter.section(f"outputs stored on another CPU model than this one ({THIS_CPU}): compared by kind, "
                                 "not content")
        for notebook, stored_on in sorted(_other_cpu_notebooks.items()):
            terminalreporter.write_line(f"{notebook}: stored on {stored_on}")
    if not _notebook_seconds:
        return
    terminalreporter.section("notebook run times (a report: a notebook over its budget does not fail the run)")
    for name, seconds in _notebook_seconds.items():
        terminalreporter.write_line(budget_line(name, seconds))
    over = [name for name, seconds in _notebook_seconds.items() if seconds > NOTEBOOK_BUDGET_S]
    if over:
        terminalreporter.write_line(f"{len(over)} notebook(s) over the {NOTEBOOK_BUDGET_S:.0f} s budget: "
                                    f"{', '.join(over)}", yellow=True, bold=True)
