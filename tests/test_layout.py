"""The layout of `utils/` stays as `utils/README.md` draws it, and every helper links back to the chapter teaching it.

- every module of the package is a row of the map, every row names a module that exists, and the names a row
  says its module holds are defined there;
- each notebook (chapters, assignments) and each tool that imports a utils module is named in that module's row,
  and each one a row names imports that module;
- every module under `utils/chapters/` is named after chapter notebooks, and a chapter or a tool imports it;
- every public function and class has a one-line summary and a `Chapter: <stem>` / `Chapters: <stem>, ...` line
  naming chapter notebooks, and every public function has type hints on all its parameters and its return.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UTILS = ROOT / "utils"
MAP = UTILS / "README.md"
CHAPTER_NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
CHAPTER_STEMS = frozenset(path.stem for path in CHAPTER_NOTEBOOKS)
NOTEBOOKS = CHAPTER_NOTEBOOKS + sorted((ROOT / "assignments" / "source").glob("*/*.ipynb"))
TOOLS = sorted((ROOT / "tools").glob("*.py"))
MODULE_FILES = sorted(UTILS.rglob("*.py"))
CHAPTER_MODULE_FILES = sorted(path for path in (UTILS / "chapters").glob("*.py") if path.name != "__init__.py")

# The back-link: a docstring line that ends with "Chapter: <stem>" or "Chapters: <stem>, <stem>, ...".
BACK_LINK = re.compile(r"(?:^|\s)(Chapters?): ([a-z0-9_]+(?:, [a-z0-9_]+)*)\.?$")


def module_name(path: Path) -> str:
    """The dotted name of a file under the repository root: utils/chapters/paper.py -> utils.chapters.paper."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in MODULE_FILES}


def mentions(text: str, stem: str) -> bool:
    """Whether `stem` occurs in `text` as a whole name (costs is not found in costs_records)."""
    return re.search(rf"(?<![\w.-]){re.escape(stem)}(?![\w-])", text) is not None


@cache
def map_rows() -> dict[str, list[str]]:
    """The map's table rows by the module named (in backticks) in their first cell: the row's other cells."""
    rows: dict[str, list[str]] = {}
    for line in MAP.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.lstrip().startswith("|") or len(cells) < 2:
            continue
        named = re.fullmatch(r"`(utils(?:\.\w+)*)`", cells[0])
        if named:
            assert named.group(1) not in rows, f"utils/README.md has two rows for {named.group(1)}"
            rows[named.group(1)] = cells[1:]
    return rows


def _without_magics(source: str) -> str:
    """A code cell's source with IPython magics and shell escapes blanked, so that `ast` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def imported_utils_modules(tree: ast.AST) -> set[str]:
    """The utils modules (and the utils package) that the code in `tree` imports, by dotted name."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "utils"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "utils":
                continue
            found.add(node.module)
            # `from utils import dropout` imports the module utils.dropout; `from utils import setup` a function
            found |= {f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in MODULES}
    return found


@cache
def notebook_imports(path: Path) -> frozenset[str]:
    """The utils modules that the code cells of the notebook at `path` import."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    found: set[str] = set()
    for cell in cells:
        if cell["cell_type"] == "code":
            found |= imported_utils_modules(ast.parse(_without_magics("".join(cell["source"]))))
    return frozenset(found)


@cache
def tool_imports(path: Path) -> frozenset[str]:
    """The utils modules that the tool at `path` imports."""
    return frozenset(imported_utils_modules(ast.parse(path.read_text(encoding="utf-8"))))


def public_definitions(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    """The functions and classes defined at the top level of the module at `path` whose names do not start with _."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [node for node in tree.body if isinstance(node, kinds) and not node.name.startswith("_")]


def test_the_map_has_one_row_per_module_and_no_other():
    rows = map_rows()
    missing = sorted(set(MODULES) - set(rows))
    stale = sorted(set(rows) - set(MODULES))
    assert not missing, f"utils/README.md has no row for {missing}: add one (what it holds, who uses it)"
    assert not stale, f"utils/README.md has rows for modules that do not exist: {stale}"


def top_level_names(path: Path) -> set[str]:
    """The names that the module at `path` defines or assigns at its top level."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return names


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_name_a_row_says_its_module_holds_is_there(name):
    row = map_rows().get(name)
    if row is None:
        pytest.skip(f"{name} has no row (reported by the test above)")
    said = set(re.findall(r"`([A-Za-z_]\w*)(?:\([^`]*\))?`", row[0]))
    missing = sorted(said - top_level_names(MODULES[name]))
    assert not missing, f"utils/README.md says {name} holds {missing}, which it does not define: update the row"


@pytest.mark.parametrize("path", NOTEBOOKS + TOOLS, ids=lambda path: str(path.relative_to(ROOT)))
def test_the_map_names_every_notebook_and_tool_in_the_rows_of_the_modules_it_imports(path):
    imports = notebook_imports(path) if path.suffix == ".ipynb" else tool_imports(path)
    rows = map_rows()
    # The package itself (`import utils`, for utils.setup) is imported by every notebook; its row says so.
    problems = [f"{name} has no row in utils/README.md" if name not in rows else
                f"the row of {name} in utils/README.md does not name {path.stem}"
                for name in sorted(imports - {"utils"})
                if name not in rows or not any(mentions(cell, path.stem) for cell in rows[name][1:])]
    assert not problems, f"{path.relative_to(ROOT)} imports modules the map does not link to it: {problems}"


@pytest.mark.parametrize("name", sorted(set(MODULES) - {"utils"}))
def test_every_notebook_and_tool_a_row_names_imports_that_module(name):
    row = map_rows().get(name)
    if row is None:
        pytest.skip(f"{name} has no row (reported by the test above)")
    users = [(path, notebook_imports(path)) for path in NOTEBOOKS] + [(path, tool_imports(path)) for path in TOOLS]
    stale = [path.stem for path, imports in users
             if any(mentions(cell, path.stem) for cell in row[1:]) and name not in imports]
    assert not stale, f"the row of {name} in utils/README.md names {stale}, which do not import it: update the row"


def chapter_module_rule(name: str) -> bool:
    """A chapter module is named after chapter notebooks: a stem, a stem plus `_<word>`, or a prefix of several stems.

    So `utils/chapters/costs.py` serves chapters/costs.ipynb, `costs_records.py` the same chapter (a part of its
    code with a name of its own), `paper.py` the chapters paper_mnist, paper_rate and paper_data_size, and
    `paper_sweeps.py` the same three (the runs of their stored sweeps).
    """
    if name in CHAPTER_STEMS:
        return True
    if any(re.fullmatch(rf"{re.escape(stem)}_[a-z0-9]+", name) for stem in CHAPTER_STEMS):
        return True
    if sum(stem.startswith(f"{name}_") for stem in CHAPTER_STEMS) >= 2:
        return True
    # a part of a several-chapter module with a name of its own: paper_sweeps beside paper
    head, _, tail = name.rpartition("_")
    return bool(head) and tail.isalnum() and sum(stem.startswith(f"{head}_") for stem in CHAPTER_STEMS) >= 2


@pytest.mark.parametrize("path", CHAPTER_MODULE_FILES, ids=module_name)
def test_each_chapter_module_is_named_after_chapters_and_used_by_one(path):
    assert chapter_module_rule(path.stem), (
        f"{module_name(path)} is not named after a chapter notebook: its name must be a chapter's stem, a stem plus "
        f"_<word>, or a prefix (before _) of several chapters' stems; chapters: {sorted(CHAPTER_STEMS)}")
    users = [notebook.stem for notebook in CHAPTER_NOTEBOOKS if module_name(path) in notebook_imports(notebook)]
    users += [tool.stem for tool in TOOLS if module_name(path) in tool_imports(tool)]
    assert users, f"no chapter notebook or tool imports {module_name(path)}: move its code where it is used"


@pytest.mark.parametrize("path", MODULE_FILES, ids=module_name)
def test_every_public_helper_has_a_summary_and_links_back_to_its_chapters(path):
    problems = []
    for node in public_definitions(path):
        doc = ast.get_docstring(node)
        if not doc:
            problems.append(f"{node.name}: no docstring")
            continue
        lines = doc.splitlines()
        if not lines[0].strip() or (len(lines) > 1 and lines[1].strip()):
            problems.append(f"{node.name}: the docstring's first line is not a one-line summary followed by a blank")
        links = [match for line in lines if (match := BACK_LINK.search(line.rstrip()))]
        if not links:
            problems.append(f"{node.name}: no 'Chapter: <stem>' or 'Chapters: <stem>, <stem>' line")
        for match in links:
            stems = match.group(2).split(", ")
            unknown = [stem for stem in stems if stem not in CHAPTER_STEMS]
            if unknown:
                problems.append(f"{node.name}: {unknown} in its '{match.group(1)}:' line are not chapters/*.ipynb")
            if (match.group(1) == "Chapter") != (len(stems) == 1):
                problems.append(f"{node.name}: write 'Chapter:' before one stem, 'Chapters:' before several")
    assert not problems, f"{module_name(path)}: " + "; ".join(problems)


@pytest.mark.parametrize("path", MODULE_FILES, ids=module_name)
def test_every_public_function_has_type_hints(path):
    problems = []
    for node in public_definitions(path):
        if isinstance(node, ast.ClassDef):
            continue
        arguments = node.args
        every = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
        every += [argument for argument in (arguments.vararg, arguments.kwarg) if argument is not None]
        bare = [argument.arg for argument in every if argument.annotation is None]
        if bare:
            problems.append(f"{node.name}: no type hint on {bare}")
        if node.returns is None:
            problems.append(f"{node.name}: no return type hint")
    assert not problems, f"{module_name(path)}: " + "; ".join(problems)


def test_the_layout_rules_accept_the_books_names_and_reject_others():
    assert chapter_module_rule("overfitting") and chapter_module_rule("costs_records")
    assert chapter_module_rule("paper")  # paper_mnist, paper_rate, paper_data_size
    assert not chapter_module_rule("helpers") and not chapter_module_rule("cost")
    assert not chapter_module_rule("setup")  # a prefix of one stem (setup_check) only
    assert mentions("overfitting, costs", "costs") and not mentions("costs_records", "costs")
    assert BACK_LINK.search("Chapters: paper_rate, paper_data_size").group(2) == "paper_rate, paper_data_size"
    assert BACK_LINK.search("for timings). Chapter: setup_check").group(2) == "setup_check"
    assert BACK_LINK.search("see the Chapter: setup_check section of it") is None
    tree = ast.parse("import utils\nfrom utils import dropout, setup\nfrom utils.chapters.paper import Scale\n"
                     "import numpy as np\nfrom .utils import x\n")
    assert imported_utils_modules(tree) == {"utils", "utils.dropout", "utils.chapters.paper"}
