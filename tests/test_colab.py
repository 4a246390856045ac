"""The first cell of every chapter (tools/colab_cell.py) makes the chapter run on Colab, and nowhere else does a thing.

The unit tests run the cell in this process, with `utils` missing, foreign or the book's, and with Colab faked; the
slow test installs the package as the cell does on Colab, from a git commit of the working tree, into a fresh virtual
environment whose preinstalled packages are the book's environment less the book, and runs a chapter's first cells
there up to the one that reads a stored table, then the whole installation check.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import types
from pathlib import Path

import nbformat
import pytest

from tools import colab_cell
from tools.toc import ROOT, toc_notebooks
from utils.environment import book_pins

NOTEBOOKS = toc_notebooks()
CHAPTER = ROOT / "chapters" / "paper_rate.ipynb"  # reads a stored sweep (data/results/fig9) in its third code cell
SETUP_CHECK = ROOT / "chapters" / "setup_check.ipynb"  # run whole: it reads the pins, with no requirements.txt
READS_RESULTS = ("load_results(", "load_provenance(")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_cell_is_what_the_tool_writes_from_config(path):
    notebook = nbformat.read(path, as_version=4)
    assert colab_cell.is_current(notebook, colab_cell.expected_source()), (
        f"the first cell of {path.name} is not what _config.yml and requirements.txt make: run "
        f"`python -m tools.colab_cell {path.relative_to(ROOT)}`")


def test_a_non_editable_install_ships_every_utils_package_and_the_stored_data():
    """pyproject.toml lists packages one by one: a new folder of utils, or a stored file of a new kind, needs a line."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "utils").rglob("*.py")}
    assert packages <= set(setuptools["packages"]), f"add {sorted(packages - set(setuptools['packages']))} to packages"
    data = ROOT / setuptools["package-dir"]["utils._data"]
    patterns = setuptools["package-data"]["utils._data"]
    shipped = {path for pattern in patterns for path in data.glob(pattern)}
    stored = [path for path in (data / "results").rglob("*") if path.suffix in (".csv", ".json")]
    stored.append(data / "gpu_costs_h100.json")  # utils.chapters.costs_records.H100_COSTS
    unshipped = [str(path.relative_to(data)) for path in stored if path not in shipped]
    assert stored and not unshipped, f"data files a chapter reads that the package would not ship: {unshipped}"


def _notebook(counts: list[int | None]) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_markdown_cell("# A title")]
    for count in counts:
        cell = nbformat.v4.new_code_cell("1 + 1", execution_count=count)
        cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=count)]
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


def test_inserting_the_cell_shifts_the_counts_and_writing_again_changes_nothing(tmp_path):
    path = tmp_path / "chapter.ipynb"
    nbformat.write(_notebook([1, 2, 3]), path)
    assert colab_cell.write(path, "print('first')")
    notebook = nbformat.read(path, as_version=4)
    first, *rest = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert (first.id, first.source, first.metadata.tags, first.outputs) == (colab_cell.CELL_ID, "print('first')",
                                                                            ["remove-cell"], [])
    assert [first.execution_count] + [cell.execution_count for cell in rest] == [1, 2, 3, 4]
    assert [cell.outputs[0].execution_count for cell in rest] == [2, 3, 4]
    before = path.read_bytes()
    assert not colab_cell.write(path, "print('first')") and path.read_bytes() == before
    assert colab_cell.write(path, "print('changed')")  # a fork's new URL: the cell is replaced, nothing shifts
    notebook = nbformat.read(path, as_version=4)
    assert [cell.execution_count for cell in notebook.cells if cell.cell_type == "code"] == [1, 2, 3, 4]
    assert notebook.cells[0].source == "print('changed')" and len(notebook.cells) == 5


def test_a_fork_changes_the_cell_through_config(tmp_path):
    shutil.copy(ROOT / "requirements.txt", tmp_path)
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/someone/fork/\n  branch: colab\n")
    assert colab_cell.repository(tmp_path) == ("https://github.com/someone/fork", "colab")
    assert "git+https://github.com/someone/fork@colab" in colab_cell.expected_source(tmp_path)
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://example.org/fork\n  branch: main\n")
    with pytest.raises(ValueError, match="GitHub repository"):
        colab_cell.repository(tmp_path)


def test_check_mode_lists_a_stale_notebook_and_fails(tmp_path, capsys):
    path = tmp_path / "chapter.ipynb"
    nbformat.write(_notebook([1]), path)
    assert colab_cell.main(["--check", str(path)]) == 1
    assert "python -m tools.colab_cell" in capsys.readouterr().out
    assert colab_cell.main([str(path)]) == 0 and colab_cell.main(["--check", str(path)]) == 0


def _run_cell(source: str) -> None:
    exec(compile(source, "<first cell>", "exec"), {"__name__": "__main__"})


def test_the_cell_is_silent_in_the_books_environment(capsys):
    _run_cell(colab_cell.expected_source())
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("stand_in", [None, types.ModuleType("utils")], ids=["missing", "another package"])
def test_the_cell_says_what_to_do_in_a_kernel_without_the_books_utils(monkeypatch, stand_in):
    monkeypatch.setitem(sys.modules, "utils", stand_in)  # None: `import utils` raises ImportError
    with pytest.raises(RuntimeError, match="select the book's kernel"):
        _run_cell(colab_cell.expected_source())


def test_on_colab_the_cell_installs_the_package_from_config_and_only_the_listed_pins(monkeypatch):
    calls: list[list[str]] = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda command, check: calls.append(command))
    _run_cell(colab_cell.expected_source())
    url, branch = colab_cell.repository()
    alone, with_deps = calls
    assert alone[:6] == [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    assert alone[6:] == [*colab_cell.pins(colab_cell.COLAB_PINS), f"dropout-in-depth @ git+{url}@{branch}"]
    assert with_deps[5:] == colab_cell.pins(colab_cell.COLAB_PINS_WITH_DEPS)
    assert not {"torch", "tensorflow", "tensorflow-cpu", "numpy", "pandas"} & {
        pin.split("==")[0] for pin in alone[6:-1] + with_deps[5:]}, "Colab's own frameworks must stay"


# --- Colab, simulated --------------------------------------------------------------------------------------------


def _commit_working_tree(destination: Path) -> None:
    """A git repository at `destination` with one commit, on branch `colab`, of the working tree's files (tracked
    and untracked, less what git ignores), as they are now."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    git = ["git", "-c", "user.name=colab test", "-c", "user.email=colab@test.invalid", "-c", "commit.gpgsign=false"]
    for command in (["init", "-q", "-b", "colab"], ["add", "-A"], ["commit", "-q", "-m", "working tree"]):
        subprocess.run([*git, *command], cwd=destination, check=True, capture_output=True)


def _colab_like_venv(destination: Path) -> Path:
    """A fresh virtual environment whose preinstalled packages (Colab's, here) are the book's environment's, less
    the book's own package; return its Python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(destination)], check=True)
    python = destination / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    preinstalled = destination.parent / "preinstalled"
    preinstalled.mkdir()
    book = ("utils", "dropout_in_depth", "__editable__", "_dropout_in_depth")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(book) and entry.suffix != ".pth":
            (preinstalled / entry.name).symlink_to(entry)
    (site / "preinstalled.pth").write_text(f"{preinstalled}\n", encoding="utf-8")
    return python


RUNNER = """
import json, sys, types
sys.modules["google.colab"] = types.ModuleType("google.colab")  # what the first cell looks for
chapter, check = json.load(open(sys.argv[1], encoding="utf-8"))
namespace = {"__name__": "__main__"}
for source in chapter:
    exec(compile(source, "<cell>", "exec"), namespace)
checked = {"__name__": "__main__"}
for source in check:  # the installation check, every cell: it reads the book's pins without requirements.txt
    exec(compile(source, "<cell>", "exec"), checked)
import utils, utils.store
from utils.chapters.costs_records import H100_COSTS
print("RESULT " + json.dumps({"utils": utils.__file__, "results": str(utils.store.RESULTS_DIR),
                              "runs": len(namespace["runs"]), "costs": H100_COSTS.is_file(),
                              "pins": checked["pinned"]}))
"""


@pytest.mark.slow
def test_a_chapter_runs_on_simulated_colab_from_the_installed_package(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the package cannot be installed from a git URL")
    repository = tmp_path / "repository"
    repository.mkdir()
    _commit_working_tree(repository)
    python = _colab_like_venv(tmp_path / "venv")
    work = tmp_path / "content"  # Colab's working folder: no repository in sight
    work.mkdir()

    notebook = nbformat.read(CHAPTER, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert code[0] == colab_cell.expected_source(), "run `python -m tools.colab_cell` first"
    reader = next(i for i, source in enumerate(code) if any(call in source for call in READS_RESULTS))
    # A host in the file URL: the pip of Python 3.11's venv refuses a git+file:/// URL with none (git accepts it)
    url, branch = repository.as_uri().replace("file://", "file://localhost", 1), "colab"
    first = colab_cell.cell_source(url, branch, colab_cell.pins(colab_cell.COLAB_PINS),
                                   colab_cell.pins(colab_cell.COLAB_PINS_WITH_DEPS))
    check = [cell.source for cell in nbformat.read(SETUP_CHECK, as_version=4).cells if cell.cell_type == "code"]
    cells = [[first, *code[1:reader + 1]], check[1:]]
    (work / "cells.json").write_text(json.dumps(cells), encoding="utf-8")
    (work / "run.py").write_text(RUNNER, encoding="utf-8")

    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"MPLBACKEND": "Agg", "PIP_NO_INPUT": "1"}
    result = subprocess.run([str(python), "run.py", "cells.json"], cwd=work, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, f"the chapter's first cells failed on simulated Colab:\n{result.stderr[-3000:]}"
    found = json.loads(next(line[7:] for line in result.stdout.splitlines() if line.startswith("RESULT ")))
    installed = Path(found["utils"]).resolve()
    assert installed.is_relative_to((tmp_path / "venv").resolve()), f"utils came from {installed}, not the install"
    assert Path(found["results"]).resolve().is_relative_to(installed.parent), "the stored tables are not installed"
    assert found["runs"] > 0 and found["costs"]
    assert found["pins"] == book_pins(), "the installed package's pins are not requirements.txt's"
