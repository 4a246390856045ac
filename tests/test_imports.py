"""Importing a framework-free utils module leaves PyTorch, TensorFlow and Keras unloaded.

A module is framework-free when nothing it imports at the top level (function bodies excluded, since they run
only when called) is a framework or a utils module that is not framework-free itself. The list is worked out from
the source, so a new module is covered without editing this file. Each one is then imported in a fresh interpreter,
which must end with no framework in `sys.modules`: that catches a framework pulled in by `utils/__init__.py`, by
a third-party library, or by an import the static reading missed.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UTILS = ROOT / "utils"
FRAMEWORKS = ("torch", "tensorflow", "keras")
MUST_BE_FREE = ("utils", "utils.checks", "utils.dropout")  # the modules the book promises load no framework


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(path): path for path in sorted(UTILS.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_statements(body: list[ast.stmt], *, top_level: bool) -> list[ast.Import | ast.ImportFrom]:
    """The import statements in `body`; with `top_level`, only those that run when the module is imported."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and top_level:
            continue
        elif isinstance(node, ast.If) and top_level and _is_type_checking(node.test):
            found += _import_statements(node.orelse, top_level=top_level)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    found += _import_statements([child], top_level=top_level)
                elif isinstance(child, ast.excepthandler | ast.match_case):
                    found += _import_statements(child.body, top_level=top_level)
    return found


def _imported_names(module: str, *, top_level: bool) -> set[str]:
    """The absolute names of the modules `module` imports (a package's submodules included, with their parents)."""
    is_package = MODULES[module].name == "__init__.py"
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in _import_statements(tree.body, top_level=top_level):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        if node.level:  # a relative import: resolve it against this module's package
            package = module.split(".") if is_package else module.split(".")[:-1]
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        names.add(base)
        names.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    with_parents = set(names)
    for name in names:
        parts = name.split(".")
        with_parents.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return with_parents


@cache
def _loads_a_framework(module: str, seen: tuple[str, ...] = ()) -> str | None:
    """Why importing `module` loads a framework, read from the source (None when it does not)."""
    parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
    for name in sorted(_imported_names(module, top_level=True) | set(parents)):
        if name.split(".")[0] in FRAMEWORKS:
            return f"{module} imports {name}"
        if name in MODULES and name != module and name not in seen:
            reason = _loads_a_framework(name, (*seen, module))
            if reason:
                return f"{module} imports {name}, and {reason}"
    return None


FREE = sorted(module for module in MODULES if _loads_a_framework(module) is None)


def _frameworks_after_import(module: str) -> tuple[str, list[str] | str]:
    code = (f"import importlib, json, sys\nimportlib.import_module({module!r})\n"
            f"print(json.dumps([name for name in {FRAMEWORKS!r} if name in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        return module, f"`import {module}` failed:\n{result.stderr[-3000:]}"
    return module, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[str] | str]:
    """For each framework-free module: the frameworks in sys.modules after importing it in a fresh interpreter."""
    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        return dict(pool.map(_frameworks_after_import, FREE))


def test_the_promised_modules_are_framework_free_in_their_source():
    reasons = [_loads_a_framework(module) for module in MUST_BE_FREE]
    assert not any(reasons), (f"these modules must import no framework at the top level: {[r for r in reasons if r]}. "
                              "Move the import inside the function that needs it.")


@pytest.mark.parametrize("module", FREE)
def test_importing_a_framework_free_module_loads_no_framework(loaded, module):
    frameworks = loaded[module]
    assert isinstance(frameworks, list), frameworks
    assert not frameworks, (
        f"`import {module}` in a fresh interpreter loaded {frameworks}, although no top-level import in its source "
        "(or in the utils modules it imports) names a framework: find what pulls it in, e.g. with "
        f"`python -X importtime -c 'import {module}' 2>&1 | grep -E 'torch|tensorflow|keras'`")


def test_checks_imports_no_framework_anywhere():
    """utils/checks.py is imported by every module, framework or not: not even its functions import a framework."""
    names = _imported_names("utils.checks", top_level=False)
    framework_imports = sorted(name for name in names if name.split(".")[0] in FRAMEWORKS)
    framework_utils = sorted(name for name in names if name in MODULES and _loads_a_framework(name))
    assert not framework_imports and not framework_utils, (
        f"utils/checks.py must import no framework, directly or through utils: {framework_imports + framework_utils}")


def test_the_source_reading_sees_framework_imports(tmp_path, monkeypatch):
    """The static reading itself: top-level, nested and relative imports count; function bodies and
    TYPE_CHECKING blocks do not."""
    package = tmp_path / "utils"
    package.mkdir()
    sources = {
        "__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n",
        "lazy.py": "def f():\n    import torch\n    return torch\n",
        "guarded.py": "try:\n    import keras\nexcept ImportError:\n    keras = None\n",
        "relative.py": "from . import guarded\n",
        "plain.py": "import numpy as np\nfrom utils import lazy\n",
        "klass.py": "class A:\n    from tensorflow import nn\n",
    }
    for name, source in sources.items():
        (package / name).write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "MODULES", {_name(path): path for path in package.rglob("*.py")})
    _loads_a_framework.cache_clear()
    try:
        verdicts = {name: _loads_a_framework(name) for name in MODULES}
    finally:
        _loads_a_framework.cache_clear()
    assert verdicts["utils"] is None and verdicts["utils.lazy"] is None and verdicts["utils.plain"] is None
    assert verdicts["utils.guarded"] == "utils.guarded imports keras"
    assert verdicts["utils.relative"] == "utils.relative imports utils.guarded, and utils.guarded imports keras"
    assert verdicts["utils.klass"] == "utils.klass imports tensorflow"
