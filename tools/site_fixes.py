"""A Sphinx extension that fixes what the pinned Jupyter Book stack gets wrong in every page's <head>.

sphinx-thebe 0.3.1 registers its scripts each time the environment reads documents, which a Jupyter Book build
does twice, so every page declared `const THEBE_JS_URL` twice: a SyntaxError in the console of every page (Sphinx
misses the repeat because one copy has filename None and the other ""). This extension drops repeated script and
stylesheet entries, page by page; the first of each stays.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def _key(asset: Any) -> tuple:
    """What makes two script or stylesheet entries the same: the file name (or inline body) and the attributes."""
    filename = getattr(asset, "filename", asset) or ""  # an inline script's filename is None or "", by origin
    attributes = getattr(asset, "attributes", {}) or {}
    return str(filename), tuple(sorted((str(k), str(v)) for k, v in attributes.items()))


def unique_assets(assets: list[Any]) -> list[Any]:
    """Return `assets` without repeats, in their first order."""
    if not isinstance(assets, list):
        raise TypeError(f"assets must be a list of script or stylesheet entries, got {type(assets).__name__}")
    seen: set[tuple] = set()
    kept = []
    for asset in assets:
        key = _key(asset)
        if key not in seen:
            seen.add(key)
            kept.append(asset)
    return kept


def _dedupe_page_assets(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any],
                        doctree: Any) -> None:
    """Remove repeated <script> and <link rel=stylesheet> entries from one page's template context."""
    for name in ("script_files", "css_files"):
        if isinstance(context.get(name), list):
            context[name][:] = unique_assets(context[name])


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the page-context hook; it runs after every other extension has added its files."""
    app.connect("html-page-context", _dedupe_page_assets, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
