"""The site builds with warnings as errors, and the built pages, figures and internal links are all there."""

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tools.build_site import HTML_DIR, build
from tools.toc import ROOT, toc_entries


class _Links(HTMLParser):
    """Collect the href and src attributes of a page."""

    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.images: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])


@pytest.fixture(scope="module")
def site() -> Path:
    result = build()
    assert result.returncode == 0, f"site build failed (warnings are errors):\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    return HTML_DIR


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
