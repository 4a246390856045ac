"""The test tiers: conftest.py's table of placed tests names tests that exist, and pyproject.toml registers every tier.

A renamed test left in the table would silently fall back to `unit` and slow `make test-fast` down; these checks
catch that before anyone has to notice the time. Then how conftest.py shares the tiers out between the worker
processes of `make test` (pytest-xdist), and how their reports reach the end-of-run summary.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def root_conftest(request):
    """The root conftest.py as pytest loaded it (tests/conftest.py has the same module name, so ask pytest)."""
    wanted = (ROOT / "conftest.py").resolve()
    (module,) = [plugin for plugin in request.config.pluginmanager.get_plugins()
                 if getattr(plugin, "__file__", None) and Path(plugin.__file__).resolve() == wanted]
    return module


def test_every_tier_is_registered_as_a_marker(root_conftest):
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    registered = {line.split(":")[0].strip() for line in markers["markers"]}
    assert set(root_conftest.TIERS) <= registered, f"register {set(root_conftest.TIERS) - registered} in pyproject.toml"


def test_every_placed_test_exists(root_conftest):
    stale = []
    for key, tier in root_conftest.PLACED.items():
        assert tier in root_conftest.TIERS, f"{key}: {tier!r} is not a tier"
        path, _, name = key.partition("::")
        if not (ROOT / path).is_file():
            stale.append(key)
        elif name:
            tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
            if name not in {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}:
                stale.append(key)
    assert not stale, f"conftest.py's PLACED names tests that no longer exist (renamed?): {stale}"


def test_this_file_is_in_the_fast_tier(request):
    assert request.node.get_closest_marker("unit"), "a test file with no tier marker of its own should be `unit`"


# --- a run spread over several cores (pytest-xdist): conftest.py's BookScheduling ---


class _Worker:
    """A stand-in for one xdist worker: records the indices of the tests it is sent."""

    def __init__(self, name: str) -> None:
        self.gateway = type("Gateway", (), {"id": name})()
        self.shutting_down = False
        self.sent: list[int] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def test_a_spread_run_keeps_each_notebook_and_the_site_files_on_one_worker(root_conftest, request, monkeypatch):
    """Two workers, run to the end: every nbval cell of a notebook goes to one worker, in order, and so does every
    test of the site's own files (one group: they share one build and one browser); the rest go to both."""
    monkeypatch.setattr(request.config.option, "loadscopereorder", True, raising=False)  # the scheduler turns it off
    monkeypatch.setattr(request.config.option, "tx", ["popen", "popen"], raising=False)
    collection = [*(f"tests/test_site.py::test_{i}" for i in range(3)), "tests/test_browser.py::test_page",
                  *(f"chapters/a.ipynb::Cell {i}" for i in range(4)),
                  *(f"chapters/b.ipynb::Cell {i}" for i in range(3)), *(f"tests/test_x.py::test_{i}" for i in range(6))]
    scheduler = root_conftest.pytest_xdist_make_scheduler(config=request.config, log=None)
    workers = [_Worker("gw0"), _Worker("gw1")]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, collection)
    scheduler.schedule()
    done: set[int] = set()
    for turn in range(10 * len(collection)):  # the workers take turns finishing their next test
        if not scheduler.has_pending:
            break
        worker = workers[turn % 2]
        left = [index for index in worker.sent if index not in done]
        if left:
            done.add(left[0])
            scheduler.mark_test_complete(worker, left[0])
    runs = {worker.gateway.id: [collection[index] for index in worker.sent] for worker in workers}
    assert sorted(runs["gw0"] + runs["gw1"]) == sorted(collection), "each test should go out exactly once"
    for group in ("chapters/a.ipynb", "chapters/b.ipynb", "tests/test_site.py", "tests/test_browser.py"):
        holders = [name for name, run in runs.items() if any(nodeid.startswith(group) for nodeid in run)]
        assert len(holders) == 1, f"{group} went to {holders}"
        run = runs[holders[0]]
        mine = [nodeid for nodeid in collection if nodeid.startswith(group)]
        assert [nodeid for nodeid in run if nodeid.startswith(group)] == mine, f"{group} out of order"
    site = [name for name, run in runs.items() if "tests/test_browser.py::test_page" in run]
    assert site == [name for name, run in runs.items() if "tests/test_site.py::test_0" in run], "one site group"
    assert all(any("test_x" in nodeid for nodeid in run) for run in runs.values()), (
        f"the tests outside a group should go to whichever worker is free: {runs}")
    assert request.config.option.loadscopereorder is False


def test_installed_xdist_is_the_pinned_version():
    """conftest.py's BookScheduling builds on xdist's LoadScopeScheduling and its `_split_scope`, which xdist does not
    promise to keep: an upgrade is checked by the test above, and by a look at whether `--dist loadgroup` groups again
    (xdist issue #1386), which would do without BookScheduling."""
    pins = re.findall(r"^pytest-xdist==([^\s;#]+)", (ROOT / "requirements.txt").read_text(encoding="utf-8"), re.M)
    installed = importlib.metadata.version("pytest-xdist")
    assert pins == [installed], (f"pytest-xdist {installed} is installed but requirements.txt pins {pins}: run "
                                 "`make env`, or, upgrading, check conftest.py's BookScheduling against the new xdist")


def test_worker_groups_follow_the_tiers_table(root_conftest):
    assert root_conftest.worker_group("chapters/intro.ipynb::Cell 3") == "chapters/intro.ipynb"
    assert set(root_conftest.SITE_FILES) == {"tests/test_site.py", "tests/test_browser.py"}
    assert root_conftest.worker_group("tests/test_browser.py::test_page[chapters/intro]") == root_conftest.SITE_GROUP
    assert root_conftest.worker_group("tests/test_tiers.py::test_this_file_is_in_the_fast_tier") is None


def test_what_a_worker_reports_reaches_the_end_of_run_summary(root_conftest, request, monkeypatch):
    """A notebook cell's time and a test's report lines travel in its report's user_properties, which xdist sends
    from the worker to the process that prints the summary; they count once, from the call's report."""
    monkeypatch.setattr(root_conftest, "_notebook_seconds", defaultdict(float))
    monkeypatch.setattr(root_conftest, "_summaries", {})
    properties = [(root_conftest.NOTEBOOK_SECONDS, ("a.ipynb", 1.5)), (root_conftest.SUMMARY, ("title", ["line"]))]
    hook = request.config.hook
    for when in ("setup", "call", "teardown"):
        report = pytest.TestReport("chapters/a.ipynb::Cell 0", ("chapters/a.ipynb", 0, "Cell 0"), {}, "passed",
                                   None, when, user_properties=properties if when != "setup" else [])
        sent = hook.pytest_report_to_serializable(config=request.config, report=report)  # what a worker sends
        root_conftest.pytest_runtest_logreport(hook.pytest_report_from_serializable(config=request.config, data=sent))
    assert dict(root_conftest._notebook_seconds) == {"a.ipynb": 1.5}
    assert root_conftest._summaries == {"title": ["line"]}
