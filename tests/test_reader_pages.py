"""What a reader meets on every chapter page: nothing cut off at the text column, nothing private, no traceback,
no answer in view, no figure without a caption, and no word about the repository's own process.

The stored notebooks are what the site shows, so most checks read them; the built pages are checked for machine
paths and captions as well (the `site` tier), and tests/test_browser.py measures overflow in a real browser.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from tools.exercise_list import META
from tools.toc import ROOT, toc_entries, toc_notebooks
from utils.pages import TEXT_COLUMN

NOTEBOOKS = toc_notebooks()
# A path of the machine that ran the code: home, root, temporary and working folders, a virtual environment, an
# installed package's folder, an IPython kernel's file. (A relative `.venv/bin/python` in a command is advice, not a
# path of this machine.) None of these means anything to a reader.
MACHINE_PATH = re.compile(r"(?<![\w.])/(home|root|tmp|work|Users|private/var)/|[A-Z]:\\Users\\|site-packages|"
                          r"(?<=\w)/\.venv[/\\]|ipykernel_\d+|/var/folders/")
# The repository's own process, which a reader page never speaks of.
PROCESS = re.compile(r"\b(issue|pull request|PR) ?#?\d+|\bnbval\b|\bpytest\b|\bthe test suite\b", re.I)
HIDDEN = {"remove-cell", "remove-output"}


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _cells(path: Path):
    return list(enumerate(nbformat.read(path, as_version=4).cells))


def _tags(cell) -> set[str]:
    return set(cell.metadata.get("tags", []))


def _output_text(output) -> str:
    """The text an output shows: a stream, a plain-text result, or an error's traceback."""
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return "\n".join(output.traceback)
    return str(output.get("data", {}).get("text/plain", "")) if "text/html" not in output.get("data", {}) else ""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_no_code_line_is_wider_than_the_text_column(path):
    wide = [(index, line) for index, cell in _cells(path) if cell.cell_type == "code"
            for line in cell.source.splitlines() if len(line) > TEXT_COLUMN]
    assert not wide, f"{len(wide)} code lines over {TEXT_COLUMN} chars; first, cell {wide[0][0]}: {wide[0][1]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_no_shown_text_output_is_wider_than_the_text_column(path):
    wide = [(index, line) for index, cell in _cells(path) if cell.cell_type == "code" and not _tags(cell) & HIDDEN
            for output in cell.get("outputs", []) for line in _output_text(output).splitlines()
            if len(line) > TEXT_COLUMN]
    assert not wide, (f"{len(wide)} output line(s) over {TEXT_COLUMN} characters, cut off on the page; first in "
                      f"cell {wide[0][0]}: {wide[0][1][:120]!r}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_no_stored_output_holds_a_machine_path(path):
    found = [(index, match.group(0)) for index, cell in _cells(path) if cell.cell_type == "code"
             for output in cell.get("outputs", []) for match in [MACHINE_PATH.search(str(output))] if match]
    assert not found, f"machine paths in stored outputs (cell, path): {found[:5]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_an_error_is_shown_as_its_type_and_message_not_a_traceback(path):
    errors = [index for index, cell in _cells(path) if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors, (f"cells {errors} store a traceback: run the failing line inside "
                        "`with utils.pages.show_error(TheError):`, which prints 'TheError: message'")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_no_source_is_printed_with_inspect(path):
    printing = [index for index, cell in _cells(path) if cell.cell_type == "code" and "getsource" in cell.source]
    assert not printing, f"cells {printing} print code with inspect.getsource: show it with literalinclude :pyobject:"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_solution_code_is_hidden_and_solutions_are_collapsed(path):
    problems = []
    for index, cell in _cells(path):
        if cell.cell_type == "code" and "solution" in _tags(cell) and "remove-cell" not in _tags(cell):
            problems.append(f"cell {index}: solution code in view (tag it remove-cell; glue what the answer needs)")
        if cell.cell_type == "markdown":
            for match in re.finditer(r"^(`{3,}|:{3,})\{solution(-start)?\}[^\n]*\n((?::[^\n]*\n)*)", cell.source, re.M):
                if not re.search(r"^:class:.*\bdropdown\b", match.group(3), re.M):
                    problems.append(f"cell {index}: a solution that is not collapsed (add ':class: dropdown')")
    assert not problems, "; ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_every_exercise_opens_with_its_kind_difficulty_time_and_hardware(path):
    missing = []
    for index, cell in _cells(path):
        if cell.cell_type != "markdown":
            continue
        for match in re.finditer(r"^(`{3,}|:{3,})\{exercise(-start)?\}[^\n]*\n((?::[^\n]*\n)*)\s*([^\n]*)", cell.source,
                                 re.M):
            first = match.group(4).strip()
            if not (first.startswith("*") and first.endswith("*") and META.fullmatch(first.strip("*"))):
                missing.append(f"cell {index}: {first[:60]!r}")
    assert not missing, ("exercises whose body does not open with a line like '*Code · ★★☆ · 20 min · laptop CPU*' "
                         f"(kind: Pen and paper, Code or Experiment): {missing}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_the_page_speaks_of_dropout_not_of_the_repository(path):
    found = [(index, match.group(0)) for index, cell in _cells(path) if not _tags(cell) & {"remove-cell"}
             for match in [PROCESS.search(cell.source)] if match]
    assert not found, f"the repository's process on a reader page (cell, words): {found[:5]}"


def test_the_checks_catch_what_they_look_for():
    assert MACHINE_PATH.search("File /home/ada/book/.venv/lib/python3.12/site-packages/torch/x.py")
    assert MACHINE_PATH.search("/tmp/ipykernel_123/456.py") and MACHINE_PATH.search(r"C:\Users\ada\book")
    assert not MACHINE_PATH.search("data/results/fig11.csv") and not MACHINE_PATH.search("1/work/3")
    assert not MACHINE_PATH.search("run .venv/bin/python -m tools.experiments")
    assert not MACHINE_PATH.search("source ../.venv/bin/activate") and MACHINE_PATH.search("/opt/book/.venv/lib")
    assert PROCESS.search("see issue 8 of the repository") and PROCESS.search("nbval re-runs it")
    assert not PROCESS.search("this issue of overfitting")


class _Figures(HTMLParser):
    """Count the images of the page's article (not the header's launch-button logos) and those that sit in a
    <figure> with a <figcaption>."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.figures: list[dict] = []
        self.loose: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("img", "br", "hr", "meta", "link", "input", "source"):
            if tag == "img" and "article" in self.stack:
                if "figure" in self.stack:
                    self.figures[-1]["images"].append(dict(attrs).get("src", ""))
                else:
                    self.loose.append(dict(attrs).get("src", ""))
            return
        self.stack.append(tag)
        if tag == "figure":
            self.figures.append({"images": [], "caption": False})
        if tag == "figcaption" and self.figures:
            self.figures[-1]["caption"] = True

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass


@pytest.mark.parametrize("entry", toc_entries())
def test_every_figure_on_a_built_page_has_a_caption(site, entry):
    parser = _Figures()
    parser.feed((site / Path(entry).with_suffix(".html")).read_text(encoding="utf-8"))
    uncaptioned = parser.loose + [src for figure in parser.figures if not figure["caption"] for src in figure["images"]]
    assert not uncaptioned, f"{entry}: figures without a caption: {uncaptioned[:5]}"


@pytest.mark.parametrize("entry", toc_entries())
def test_no_built_page_shows_a_machine_path(site, entry):
    text = re.sub(r"<(script|style)\b.*?</\1>", "", (site / Path(entry).with_suffix(".html")).read_text("utf-8"),
                  flags=re.S)
    found = sorted({match.group(0) for match in MACHINE_PATH.finditer(re.sub(r"<[^>]+>", " ", text))})
    assert not found, f"{entry}: machine paths on the page: {found[:5]}"
