"""Read the book's table of contents: which source files make up the site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCE_SUFFIXES = (".ipynb", ".md")


def _entries(node: Any) -> list[str]:
    """Collect every `root`/`file` entry of a jb-book table of contents, in reading order."""
    found: list[str] = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if key in node:
                found.append(str(node[key]))
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []) or []:
                found.extend(_entries(child))
    return found


def toc_entries(root: Path = ROOT) -> list[str]:
    """Return the entries of `_toc.yml` as written (paths without suffix), in reading order."""
    with open(root / "_toc.yml", encoding="utf-8") as handle:
        toc = yaml.safe_load(handle)
    return _entries(toc)


def resolve_entry(entry: str, root: Path = ROOT) -> Path | None:
    """Return the source file a table-of-contents entry points at, or None when none exists."""
    base = root / entry
    if base.suffix in SOURCE_SUFFIXES:
        return base if base.is_file() else None
    for suffix in SOURCE_SUFFIXES:
        if base.with_suffix(suffix).is_file():
            return base.with_suffix(suffix)
    return None


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """Return every notebook listed in `_toc.yml`, in reading order."""
    paths = (resolve_entry(entry, root) for entry in toc_entries(root))
    return [path for path in paths if path is not None and path.suffix == ".ipynb"]
