"""`BOOK_SOLUTIONS=hide make site`: a small book with both kinds of solution, built without and with solutions.

sphinx-exercise has two ways to write a solution: a {solution} block, and a gated {solution-start} ... {solution-end}
span, which lets a solution hold notebook code cells. Its own `hide_solutions` setting crashes on the gated kind
(tools/build_site.py says how the build hides solutions instead); these tests build both kinds through
`tools.build_site.build`, the function `make site` runs, with the book's own configuration.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from tools.build_site import SOLUTION_CELL_TAG, build, hidden_solutions_config

pytestmark = pytest.mark.site  # two small jupyter-book builds: about 10 to 20 s

ROOT = Path(__file__).resolve().parents[1]
SECRETS = ("PLAIN-SECRET-FOUR", "GATED-SECRET-NINE", "gated_secret_code", "tagged_secret_cell")
PUBLIC = ("What is two plus two?", "What is three times three?", "TEXT-AFTER-THE-SOLUTION", "public_code_cell")

PLAIN_PAGE = """# Plain

```{exercise} Add
:label: ex-plain-1

What is two plus two?
```

```{solution} ex-plain-1
:class: dropdown

PLAIN-SECRET-FOUR
```
"""


def _gated_notebook() -> nbformat.NotebookNode:
    """A notebook whose solution spans cells: solution-start, a paragraph, a code cell, solution-end."""
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [
        md("# Gated\n\n```{exercise} Multiply\n:label: ex-gated-1\n\nWhat is three times three?\n```"),
        code("public_code_cell = 1"),
        md("```{solution-start} ex-gated-1\n:class: dropdown\n```\n\nGATED-SECRET-NINE"),
        code("gated_secret_code = 3 * 3"),
        md("```{solution-end}\n```"),
        code("tagged_secret_cell = 9", metadata={"tags": [SOLUTION_CELL_TAG]}),
        md("TEXT-AFTER-THE-SOLUTION"),
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": kernel})


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> dict[str, Path]:
    """The small book built with solutions ("show") and without ("hide"): {mode: its HTML folder}."""
    tmp = tmp_path_factory.mktemp("solutions")
    book = tmp / "book"
    book.mkdir()
    for name in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / name, book / name)
    shutil.copytree(ROOT / "_static", book / "_static")
    (book / "_toc.yml").write_text("format: jb-book\nroot: plain\nchapters:\n  - file: gated\n", encoding="utf-8")
    (book / "plain.md").write_text(PLAIN_PAGE, encoding="utf-8")
    nbformat.write(_gated_notebook(), book / "gated.ipynb")
    html = {}
    for mode in ("show", "hide"):
        result = build(book, solutions=mode, output=tmp / mode)
        assert result.returncode == 0, f"{mode}: {result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        html[mode] = tmp / mode / "_build" / "html"
    return html


def _site_text(html: Path) -> str:
    """Every text file of a built site, joined: pages, search index, copied sources."""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace") for path in sorted(html.rglob("*"))
                     if path.is_file() and path.suffix in {".html", ".js", ".md", ".ipynb", ".txt"})


def test_the_config_without_solutions_keeps_the_books_settings(tmp_path):
    path = hidden_solutions_config(ROOT, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "tools.build_site" in text and "sphinx_exercise" in text
    assert "html_copy_source: false" in text and "use_download_button: false" in text
    assert "dropout-in-depth/dropout-in-depth" in text, "the repository settings are kept"


def test_with_solutions_every_solution_is_on_its_page(sites):
    pages = {name: (sites["show"] / f"{name}.html").read_text(encoding="utf-8") for name in ("plain", "gated")}
    assert "PLAIN-SECRET-FOUR" in pages["plain"] and 'class="solution dropdown' in pages["plain"]
    for text in ("GATED-SECRET-NINE", "gated_secret_code", "tagged_secret_cell"):
        assert text in pages["gated"], text
    assert 'class="solution dropdown' in pages["gated"], "the gated span became one collapsed solution"
    assert (sites["show"] / "_sources").is_dir(), "with solutions the download button's sources are there"


def test_without_solutions_no_solution_text_is_left_anywhere(sites):
    text = _site_text(sites["hide"])
    for secret in SECRETS:
        assert secret not in text, secret
    assert 'class="solution' not in text
    assert not (sites["hide"] / "_sources").exists(), "the copied sources hold the solutions"
    assert "download-source-button" not in (sites["hide"] / "plain.html").read_text(encoding="utf-8")


def test_without_solutions_the_exercises_and_the_rest_of_the_page_stay(sites):
    text = _site_text(sites["hide"])
    for public in PUBLIC:
        assert public in text, public
    assert "Exercise" in (sites["hide"] / "gated.html").read_text(encoding="utf-8")
