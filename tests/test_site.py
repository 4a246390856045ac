"""The site builds with warnings as errors, and the built pages, figures and internal links are all there.

These tests read the built HTML files; tests/test_browser.py loads the same pages in Chromium. Both take the site
from the session fixture `site` in tests/conftest.py, so a pytest session builds it once.
"""

import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml

from tools.build_site import HTML_DIR
from tools.exercise_list import reading_order
from tools.site_fixes import unique_assets
from tools.toc import ROOT, resolve_entry, toc_entries


class _Links(HTMLParser):
    """Collect the href and src attributes of a page."""

    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.images: list[str] = []
        self.scripts: list[str] = []
        self.resources: list[str] = []  # what the page loads by itself: scripts, stylesheets, icons, images, media
        self.main_images: list[tuple[str, str | None]] = []  # (src, alt) of the images inside <main>
        self._main_depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "main":
            self._main_depth += 1
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
            if self._main_depth:
                self.main_images.append((attrs["src"], attrs.get("alt")))
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])
        if tag in ("script", "img", "iframe", "video", "audio", "source", "embed") and attrs.get("src"):
            self.resources.append(attrs["src"])
        if tag == "link" and attrs.get("href") and attrs.get("rel", "") not in ("canonical", "next", "prev", "index",
                                                                                 "search", "author", "license"):
            self.resources.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "main" and self._main_depth:
            self._main_depth -= 1


def _page(site: Path, entry: str) -> Path:
    return site / Path(entry).with_suffix(".html")


def _parse(page: Path) -> _Links:
    links = _Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def test_every_toc_entry_has_a_page(site):
    assert (site / "index.html").is_file()
    missing = [entry for entry in toc_entries() if not _page(site, entry).is_file()]
    assert not missing, f"no built page for {missing}"


@pytest.mark.parametrize("entry, at_least", [("chapters/intro", 1), ("chapters/setup_check", 2)])
def test_chapter_figures_are_embedded_and_exist(site, entry, at_least):
    page = _page(site, entry)
    images = [src for src in _parse(page).images if not src.startswith(("http:", "https:", "data:"))]
    figures = [src for src in images if "logo" not in src]
    assert len(figures) >= at_least, f"{entry}: expected at least {at_least} figures, found {figures}"
    for src in images:
        assert (page.parent / unquote(src)).resolve().is_file(), f"{entry}: image {src} is missing"


def test_internal_links_resolve(site):
    broken = []
    for page in site.rglob("*.html"):
        if "_static" in page.parts:
            continue
        for href in _parse(page).hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("#", "mailto:", "javascript:")) or not parts.path:
                continue
            if not (page.parent / unquote(parts.path)).resolve().exists():
                broken.append(f"{page.relative_to(site)} -> {href}")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_no_page_shows_a_build_error_or_raw_directive(site):
    for entry in toc_entries():
        text = _page(site, entry).read_text(encoding="utf-8")
        assert "```{" not in text and "System Message" not in text, entry


def test_pages_load_no_script_from_the_network(site):
    """The site must work offline: MathJax and every other script are served from the site itself."""
    for entry in toc_entries():
        page = _page(site, entry)
        scripts = _parse(page).scripts
        remote = [src for src in scripts if urlsplit(src).scheme or src.startswith("//")]
        assert not remote, f"{entry} loads scripts from the network: {remote}"
        if 'class="math' in page.read_text(encoding="utf-8"):
            assert any("mathjax" in src.lower() for src in scripts), f"{entry}: no local MathJax"


def _is_remote(url: str) -> bool:
    return bool(urlsplit(url).scheme in ("http", "https") or url.startswith("//"))


def test_pages_load_nothing_from_the_network(site):
    """Offline: no page links a remote stylesheet, font, icon, image or frame, and no CSS file imports one."""
    for entry in toc_entries():
        remote = [url for url in _parse(_page(site, entry)).resources if _is_remote(url)]
        assert not remote, f"{entry} loads from the network: {remote}"
    for css in (site / "_static").rglob("*.css"):
        text = css.read_text(encoding="utf-8", errors="replace")
        remote = re.findall(r"(?:url\(|@import)\s*[\"']?((?:https?:)?//[^\"')\s]+)", text)
        assert not remote, f"{css.relative_to(site)} pulls from the network: {remote}"


def _is_description(src: str, alt: str | None) -> bool:
    """An alt text that describes: not empty, and not just the image's file name."""
    alt = (alt or "").strip()
    return bool(alt) and Path(unquote(alt)).name != Path(unquote(src)).name


@pytest.mark.parametrize("entry", toc_entries())
def test_every_figure_has_alt_text(site, entry):
    """A glued figure gets it from :alt:; a plt.show() figure from its cell's metadata mystnb.image.alt."""
    unlabelled = [src for src, alt in _parse(_page(site, entry)).main_images if not _is_description(src, alt)]
    assert not unlabelled, (f"{entry}: images without alt text (for a plt.show() cell, set its metadata "
                            f'{{"mystnb": {{"image": {{"alt": "..."}}}}}}): {unlabelled}')


def _config() -> dict:
    with open(ROOT / "_config.yml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _notebook_entries() -> list[str]:
    return [entry for entry in toc_entries() if (resolve_entry(entry) or Path()).suffix == ".ipynb"]


@pytest.mark.parametrize("entry", _notebook_entries())
def test_chapter_offers_download_and_launch_buttons(site, entry):
    """Each notebook page links its .ipynb for download and opens it in Colab and Binder, from _config.yml's repo."""
    repository = _config()["repository"]
    owner_repo = urlsplit(repository["url"]).path.strip("/")
    branch, book = repository["branch"], repository.get("path_to_book", "").strip("/")
    notebook = "/".join(part for part in (book, entry + ".ipynb") if part)
    page = _page(site, entry)
    hrefs = _parse(page).hrefs
    colab = f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{notebook}"
    binder = f"https://mybinder.org/v2/gh/{owner_repo}/{branch}?urlpath=lab/tree/{notebook}"
    assert colab in hrefs, f"{entry}: no Colab button ({colab})"
    assert binder in hrefs, f"{entry}: no Binder button ({binder})"
    downloads = [href for href in hrefs if href.endswith(f"_sources/{entry}.ipynb")]
    assert downloads, f"{entry}: no .ipynb download link"
    stored = nbformat.read(page.parent / unquote(downloads[0]), as_version=4)
    assert stored.cells == nbformat.read(resolve_entry(entry), as_version=4).cells, f"{entry}: download is stale"


def _exercise_ids(html: str) -> list[str]:
    return re.findall(r'<div class="exercise admonition[^"]*" id="([^"]+)"', html)


def test_exercise_page_lists_every_exercise_in_reading_order(site):
    """chapters/exercises is generated from the chapters: every exercise, once, in reading order, linked."""
    expected = []
    for entry in toc_entries():
        labels = _exercise_ids(_page(site, entry).read_text(encoding="utf-8"))
        expected.extend(f"{Path(entry).name}.html#{label}" for label in labels)
    assert expected, "no exercises found in the book"
    listing = _page(site, "chapters/exercises")
    exercise_ids = {link.split("#", 1)[1] for link in expected}
    links = [href for href in _parse(listing).hrefs  # links to exercises, not the page's other cross-references
             if "#" in href and not href.startswith("#") and href.split("#", 1)[1] in exercise_ids]
    assert links == expected
    text = listing.read_text(encoding="utf-8")
    assert "Exercise 2.1: " in text or re.search(r"Exercise \d+\.\d+: ", text)


def test_reading_order_walks_the_toctree_depth_first():
    env = SimpleNamespace(toctree_includes={"root": ["a", "b"], "a": ["a1", "a2"], "b": ["root"]})
    assert reading_order(env, "root") == ["root", "a", "a1", "a2", "b"]
    assert reading_order(env, "alone") == ["alone"]
    with pytest.raises(ValueError, match="non-empty docname"):
        reading_order(env, "")


def test_unique_assets_drops_repeats_and_keeps_order():
    inline = SimpleNamespace(filename=None, attributes={"body": "const X = 1"})
    same_inline = SimpleNamespace(filename="", attributes={"body": "const X = 1"})
    script = SimpleNamespace(filename="_static/a.js", attributes={})
    assert unique_assets([inline, script, same_inline, script]) == [inline, script]
    assert unique_assets(["a.css", "b.css", "a.css"]) == ["a.css", "b.css"]
    with pytest.raises(TypeError, match="must be a list"):
        unique_assets(("a.css",))


def test_pages_workflow_builds_with_the_readme_command_and_deploys():
    with open(ROOT / ".github" / "workflows" / "pages.yml", encoding="utf-8") as handle:
        workflow = yaml.safe_load(handle)
    assert workflow["permissions"]["pages"] == "write" and workflow["permissions"]["id-token"] == "write"
    build_steps = workflow["jobs"]["build"]["steps"]
    assert any(step.get("run", "").strip() == "make site" for step in build_steps)
    python = next(step for step in build_steps if step.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["cache"] == "pip"
    upload = next(step for step in build_steps if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == str(HTML_DIR.relative_to(ROOT))
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["steps"][0]["uses"].startswith("actions/deploy-pages")


_MINI_BOOK = {
    "conf.py": 'extensions = ["sphinx_exercise", "tools.exercise_list"]\nnumfig = True\n',
    "index.rst": "Book\n====\n\n.. toctree::\n   :numbered:\n\n   b\n   a\n   list\n",
    "a.rst": ("Chapter A\n=========\n\n.. exercise:: Sum of :math:`x^2`\n   :label: ex-a-1\n\n"
              "   *Pen and paper · ★☆☆ · 5 min · no computer*\n\n   Do it.\n\n"
              ".. exercise:: Hidden\n   :label: ex-a-hidden\n   :hidden:\n\n   Hidden.\n\n"
              ".. exercise:: Unnumbered\n   :label: ex-a-plain\n   :nonumber:\n\n   No number.\n"),
    "b.rst": "Chapter B\n=========\n\n.. exercise::\n   :label: ex-b-1\n\n   Untitled.\n",
    "list.rst": "All exercises\n=============\n\n.. exercise-list::\n",
}


def test_exercise_list_extension_on_a_small_book(tmp_path):
    """Reading order (not file order), numbers, maths kept in titles, meta lines shown, hidden exercises left out,
    MathJax loaded."""
    from sphinx.application import Sphinx

    for name, text in _MINI_BOOK.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    app = Sphinx(str(tmp_path), str(tmp_path), str(tmp_path / "_build"), str(tmp_path / "_doctrees"), "html",
                 status=None, warning=None, warningiserror=True, freshenv=True)
    app.build()
    html = (tmp_path / "_build" / "list.html").read_text(encoding="utf-8")
    listing = html[html.index('<ul class="exercise-list'):]
    assert re.findall(r'href="([^"]+#[^"]+)"', listing) == ["b.html#ex-b-1", "a.html#ex-a-1", "a.html#ex-a-plain"]
    assert ">Exercise 1.1</a>" in listing and "Exercise 2.1: Sum of" in listing and ">Exercise: Unnumbered" in listing
    assert r"\(x^2\)" in listing and "mathjax" in html.lower()
    assert listing.count('class="exercise-meta"') == 1 and "Pen and paper · ★☆☆ · 5 min · no computer" in listing
