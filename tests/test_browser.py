"""The built site, read in a real browser: Debian's Chromium driven by Playwright, with no network.

Every page in _toc.yml is loaded once from a server on 127.0.0.1; any request for another host is recorded and
blocked. The tests then check what a reader would see: no console error, typeset mathematics, every image drawn,
every internal link and anchor resolving, search finding a chapter, figures readable in dark mode. A screenshot of
each page goes to _build/screenshots/, and the site's size and slowest page to _build/browser_report.json and the
end of the test output. The browser is required: without it these tests fail, they do not skip (`make test`
installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import unquote, urldefrag, urlsplit

import pytest
from PIL import Image
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from tools import sitecheck
from tools.build_site import HTML_DIR
from tools.sitecheck import (
    CHROMIUM_ARGS,
    REPORT_PATH,
    SCREENSHOT_DIR,
    anchors_in,
    find_chromium,
    is_local,
    local_file,
    screenshot_name,
    serve,
    site_size,
)
from tools.toc import toc_entries

ENTRIES = toc_entries()
FIGURE_IMAGES = ".bd-content div.cell_output img, .bd-content figure img"
# TeX that MathJax should have replaced: \( \) \[ \] $$, \begin{...}, and $...$ on one line.
RAW_TEX = re.compile(r"\\[()\[\]]|\$\$|\\begin\{|\$[^$\s][^$\n]{0,200}?\$")
VIEWPORT = {"width": 1280, "height": 900}
# A screenshot shows the first screen of each page; SITE_FULL_SCREENSHOTS=1 takes whole pages (slower: seconds each).
FULL_PAGE_SCREENSHOTS = os.environ.get("SITE_FULL_SCREENSHOTS", "") == "1"

# Runs in the page once it has loaded: wait for MathJax and every image, then report what a reader would see.
_INSPECT = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const images = Array.from(document.images);
  images.forEach(img => { img.loading = "eager"; });
  const settled = Promise.all(images.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener("load", done, {once: true});
    img.addEventListener("error", done, {once: true});
  })));
  await Promise.race([settled, new Promise(done => setTimeout(done, 10000))]);
  const text = document.body.cloneNode(true);
  text.querySelectorAll("pre, code, script, style, textarea, mjx-container").forEach(el => el.remove());
  return {
    images: images.map(img => ({src: img.getAttribute("src"), alt: img.getAttribute("alt"),
                                width: img.naturalWidth, in_main: !!img.closest("main")})),
    math: document.querySelectorAll("span.math, div.math").length,
    untypeset: Array.from(document.querySelectorAll("span.math, div.math"))
                    .filter(el => !el.querySelector("mjx-container")).length,
    typeset: document.querySelectorAll("mjx-container").length,
    math_errors: document.querySelectorAll("mjx-merror").length,
    text: text.textContent,
    links: Array.from(document.querySelectorAll("a[href]"), a => a.href),
    // code, output and table blocks wider than the text column (wide display maths may scroll)
    overflowing: Array.from(document.querySelectorAll("main pre, main div.cell_output, main table"))
                      .filter(el => !el.closest("div.math, mjx-container") && el.scrollWidth > el.clientWidth + 1)
                      .map(el => ({tag: el.tagName.toLowerCase(), by: el.scrollWidth - el.clientWidth,
                                   text: el.textContent.trim().slice(0, 80)})),
  };
}"""


@dataclass
class Visit:
    """What loading one page showed."""

    entry: str
    url: str
    seconds: float = 0.0
    bytes: int = 0
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    found: dict = field(default_factory=dict)
    dark: list[str] | None = None  # problems with the figures in dark mode; None: the page has no figure


@pytest.fixture(scope="module")
def base_url(site):
    with serve(site) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless; a missing or broken browser is an error, never a skip."""
    executable = find_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        yield launched
        launched.close()


def _new_context(browser, external: list[str], **options):
    """A fresh browser context that records every request for another host than localhost.

    Such a request also fails: CHROMIUM_ARGS make every other host name unresolvable. (Recording from the request
    event, rather than intercepting each request with a route, keeps the browser's cache and the pages fast.)
    """
    context = browser.new_context(viewport=VIEWPORT, **options)
    context.on("request", lambda request: None if is_local(request.url) else external.append(request.url))
    return context


def _visit(context, base_url: str, entry: str, external: list[str]) -> Visit:
    """Load one page, wait for MathJax and images, take its screenshot and record what it showed."""
    visit = Visit(entry, base_url + entry + ".html")
    page = context.new_page()
    page.on("console", lambda msg: msg.type == "error" and visit.console_errors.append(msg.text))
    page.on("pageerror", lambda error: visit.console_errors.append(f"uncaught: {error}"))
    page.on("requestfailed", lambda request: visit.failed.append(f"{request.url} ({request.failure})"))
    page.on("response", lambda response: response.status >= 400
            and visit.failed.append(f"{response.url} (HTTP {response.status})"))
    served: set[str] = set()
    page.on("request", lambda request: served.add(request.url))
    before = len(external)
    start = time.perf_counter()
    page.goto(visit.url, wait_until="load")
    visit.found = page.evaluate(_INSPECT)
    visit.seconds = time.perf_counter() - start
    visit.external = external[before:]
    visit.bytes = sum(path.stat().st_size for url in served if (path := local_file(url, base_url)) is not None)
    page.screenshot(path=SCREENSHOT_DIR / screenshot_name(entry), full_page=FULL_PAGE_SCREENSHOTS)
    if page.query_selector(FIGURE_IMAGES) is not None:
        visit.dark = _look_in_dark_mode(page, entry)
    page.close()
    return visit


def _look_in_dark_mode(page, entry: str) -> list[str]:
    """Switch the reader's system setting to dark (the theme follows it) and check every figure; return problems."""
    page.emulate_media(color_scheme="dark")
    # A wait, not a speed limit: it returns as soon as the theme has switched (30 s, Playwright's default, for a
    # loaded laptop).
    page.wait_for_function("document.documentElement.dataset.theme === 'dark'", timeout=30_000)
    problems = []
    styles = page.eval_on_selector_all(FIGURE_IMAGES, """images => images.map(img => ({
        src: img.getAttribute("src"), filter: getComputedStyle(img).filter,
        background: getComputedStyle(img).backgroundColor}))""")
    for style in styles:
        if style["filter"] != "none" or style["background"] != "rgb(255, 255, 255)":
            problems.append(f"figure {style['src']} is dimmed or not on white: {style}")
    figure = page.query_selector(FIGURE_IMAGES)
    figure.scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOT_DIR / screenshot_name(entry, prefix="dark-"))
    figure_shot = SCREENSHOT_DIR / screenshot_name(entry, prefix="dark-figure-")
    figure.screenshot(path=figure_shot)
    edge = _edge_luminance(figure_shot)
    if edge < 245:
        problems.append(f"the first figure's edge is grey level {edge:.0f} of 255 in dark mode, not white")
    return problems


@pytest.fixture(scope="module")
def visits(browser, base_url) -> dict[str, Visit]:
    """Every page in _toc.yml, loaded once in light mode."""
    shutil.rmtree(SCREENSHOT_DIR, ignore_errors=True)  # no screenshot of an earlier run left to mislead
    SCREENSHOT_DIR.mkdir(parents=True)
    external: list[str] = []
    context = _new_context(browser, external, color_scheme="light")
    visits = {}
    try:
        for entry in ENTRIES:
            try:
                visits[entry] = _visit(context, base_url, entry, external)
            except PlaywrightError as error:  # one broken page fails its own tests, not every page's
                visits[entry] = Visit(entry, base_url + entry + ".html", console_errors=[f"could not load: {error}"],
                                      found={"images": [], "math": 0, "untypeset": 0, "typeset": 0, "math_errors": 0,
                                             "text": "", "links": [], "overflowing": []})
        return visits
    finally:
        context.close()


@pytest.mark.parametrize("entry", ENTRIES)
def test_page_loads_without_console_errors(visits, entry):
    visit = visits[entry]
    assert not visit.console_errors, f"{entry}: console errors:\n" + "\n".join(visit.console_errors)
    assert not visit.failed, f"{entry}: failed requests:\n" + "\n".join(visit.failed)


@pytest.mark.parametrize("entry", ENTRIES)
def test_no_code_output_or_table_block_overflows_the_text_column(visits, entry):
    overflowing = visits[entry].found["overflowing"]
    assert not overflowing, (
        f"{entry}: {len(overflowing)} block(s) wider than the text column at {VIEWPORT['width']} px, cut off or "
        "scrolling for the reader: " + "; ".join(f"<{b['tag']}> by {b['by']} px: {b['text']!r}"
                                                  for b in overflowing[:5]))


@pytest.mark.parametrize("entry", ENTRIES)
def test_no_request_leaves_localhost(visits, entry):
    external = visits[entry].external
    assert not external, f"{entry} asked the network for (blocked): {sorted(set(external))}"


@pytest.mark.parametrize("entry", ENTRIES)
def test_mathematics_is_typeset(visits, entry):
    found = visits[entry].found
    assert found["untypeset"] == 0, f"{entry}: {found['untypeset']} of {found['math']} formulas not typeset by MathJax"
    assert found["math_errors"] == 0, f"{entry}: MathJax reports {found['math_errors']} TeX errors"
    if found["math"]:
        assert found["typeset"] >= found["math"]
    raw = sorted({match.group(0)[:60] for match in RAW_TEX.finditer(found["text"])})
    assert not raw, f"{entry}: raw TeX visible in the page text: {raw}"


@pytest.mark.parametrize("entry", ENTRIES)
def test_every_image_loads_and_has_alt_text(visits, entry):
    images = visits[entry].found["images"]
    broken = [image["src"] for image in images if image["width"] == 0]
    assert not broken, f"{entry}: images that did not load: {broken}"
    unlabelled = [image["src"] for image in images if image["in_main"] and not _is_description(image)]
    assert not unlabelled, (f"{entry}: figures without alt text (for a plt.show() cell, set its metadata "
                            f'{{"mystnb": {{"image": {{"alt": "..."}}}}}}): {unlabelled}')


def _is_description(image: dict) -> bool:
    """An alt text that describes: not empty, and not just the image's file name."""
    alt = (image["alt"] or "").strip()
    return bool(alt) and alt != image["src"] and Path(unquote(alt)).name != Path(unquote(image["src"])).name


def test_every_internal_link_and_anchor_resolves(visits, base_url):
    targets: dict[str, set[str]] = {}
    for visit in visits.values():
        for href in visit.found["links"]:
            if href.startswith(base_url):
                url, fragment = urldefrag(href)
                targets.setdefault(url, set()).add(unquote(fragment))
    assert targets, "no internal links found"
    broken = []
    for url, fragments in sorted(targets.items()):
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = response.read()
                status = response.status
        except HTTPError as error:
            broken.append(f"{url} (HTTP {error.code})")
            continue
        if status != 200:
            broken.append(f"{url} (HTTP {status})")
            continue
        if urlsplit(url).path.endswith((".html", "/")):
            missing = {f for f in fragments if f} - anchors_in(body.decode("utf-8"))
            broken.extend(f"{url}#{fragment} (no such anchor)" for fragment in sorted(missing))
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_search_finds_the_inverted_scaling_chapter(browser, base_url):
    external: list[str] = []
    context = _new_context(browser, external)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.goto(base_url + "search.html?q=inverted")
        hit = page.wait_for_selector("#search-results a[href*='chapters/inverted_scaling.html']", timeout=20000)
        assert "inverted" in hit.inner_text().lower()
        page.screenshot(path=SCREENSHOT_DIR / "search-inverted.png")
    finally:
        context.close()
    assert not errors, f"search page console errors: {errors}"
    assert not external, f"search asked the network for: {external}"


@pytest.mark.parametrize("entry", ENTRIES)
def test_figures_are_readable_in_dark_mode(visits, entry):
    """In dark mode every figure sits on a white card, undimmed, so its black text stays readable."""
    problems = visits[entry].dark
    assert not problems, f"{entry}: figures not readable in dark mode:\n" + "\n".join(problems)


def test_dark_mode_was_checked_on_pages_with_figures(visits):
    checked = [entry for entry, visit in visits.items() if visit.dark is not None]
    assert "chapters/intro" in checked and len(checked) >= 3, f"dark mode checked on {checked} only"


def _edge_luminance(path: Path, band: int = 3) -> float:
    """Median grey level (0 black, 255 white) of the outer `band` pixels of a screenshot: the figure's card."""
    with Image.open(path) as image:
        grey = image.convert("L")
    width, height = grey.size
    strips = [(0, 0, width, band), (0, height - band, width, height), (0, 0, band, height),
              (width - band, 0, width, height)]
    histogram = [sum(counts) for counts in zip(*(grey.crop(box).histogram() for box in strips))]
    half, seen = sum(histogram) / 2, 0
    for level, count in enumerate(histogram):  # the median: rounded corners and a stray row do not count
        seen += count
        if seen >= half:
            return float(level)
    return 0.0


def test_report_site_size_and_slowest_page(visits, site, request):
    """Write the site's size and page load times to _build/browser_report.json and the end of the test output."""
    slowest = max(visits.values(), key=lambda visit: visit.seconds)
    heaviest = max(visits.values(), key=lambda visit: visit.bytes)
    report = {
        "site_bytes": site_size(site),
        "pages": {entry: {"load_seconds": round(visit.seconds, 3), "bytes_loaded": visit.bytes}
                  for entry, visit in visits.items()},
        "slowest_page": slowest.entry, "slowest_load_seconds": round(slowest.seconds, 3),
        "heaviest_page": heaviest.entry, "heaviest_page_bytes": heaviest.bytes,
        "screenshots": str(SCREENSHOT_DIR),
    }
    REPORT_PATH.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [f"site size {report['site_bytes'] / 2**20:.1f} MiB on disk ({HTML_DIR})",
             f"slowest page {slowest.entry}: {slowest.seconds:.2f} s to load, typeset and draw its images",
             f"heaviest page {heaviest.entry}: {heaviest.bytes / 2**20:.1f} MiB fetched",
             f"screenshots in {SCREENSHOT_DIR}; details in {REPORT_PATH}"]
    # conftest.py prints it at the end of the run (a report's user_properties reach it from an xdist worker too)
    request.node.user_properties.append(("summary", ("site in the browser", lines)))
    assert report["site_bytes"] > 0 and slowest.seconds > 0


# --- the helpers in tools/sitecheck.py, without a browser ---


def test_is_local_accepts_only_this_machine():
    assert is_local("http://127.0.0.1:8000/index.html") and is_local("http://localhost/x") and is_local("data:,x")
    assert not is_local("https://cdn.jsdelivr.net/npm/mathjax@3") and not is_local("//fonts.googleapis.com/css")
    with pytest.raises(TypeError, match="url must be a str"):
        is_local(None)


def test_find_chromium_explains_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="make test"):
        find_chromium({"PATH": str(tmp_path)})
    with pytest.raises(FileNotFoundError, match="CHROMIUM="):
        find_chromium({"CHROMIUM": str(tmp_path / "nothing"), "PATH": ""})
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_chromium({"PATH": str(tmp_path)}) == str(fake)


def test_serve_serves_a_folder_on_localhost(tmp_path):
    (tmp_path / "a.html").write_text('<p id="here">hi</p>', encoding="utf-8")
    with serve(tmp_path) as url:
        assert is_local(url)
        with urllib.request.urlopen(url + "a.html", timeout=5) as response:
            assert anchors_in(response.read().decode()) == {"here"}
        assert local_file(url + "a.html#here", url, tmp_path) == tmp_path / "a.html"
        assert local_file("http://example.org/a.html", url, tmp_path) is None
    with pytest.raises(FileNotFoundError, match="make site"), serve(tmp_path / "missing"):
        pass


def test_screenshot_name_and_site_size(tmp_path):
    assert screenshot_name("chapters/intro") == "chapters-intro.png"
    assert screenshot_name("chapters/intro", prefix="dark-") == "dark-chapters-intro.png"
    with pytest.raises(ValueError, match="relative path"):
        screenshot_name("../etc/passwd")
    (tmp_path / "x").write_bytes(b"12345")
    assert site_size(tmp_path) == 5


def test_workers_of_one_run_share_one_site_build(tmp_path, monkeypatch):
    """build_once with a shared folder, as each xdist worker calls it: the first builds, the next reads its result."""
    builds = []
    monkeypatch.setattr(sitecheck, "build", lambda: builds.append(1) or subprocess.CompletedProcess(
        ["jupyter-book"], 1, "log\n", "a warning\n"))
    monkeypatch.setattr(sitecheck, "HTML_DIR", tmp_path / "html")
    first = sitecheck.build_once.__wrapped__(tmp_path)  # __wrapped__: past this process's cache, as another worker
    second = sitecheck.build_once.__wrapped__(tmp_path)
    assert builds == [1]
    assert (second.args, second.returncode, second.stdout, second.stderr) == (
        first.args, first.returncode, first.stdout, first.stderr) == (["jupyter-book"], 1, "log\n", "a warning\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["site_build.json", "site_build.lock"]


def test_a_request_for_another_host_is_caught_and_fails(browser, tmp_path):
    """The guard itself: a page that asks the network is recorded, and gets nothing (no host name resolves)."""
    (tmp_path / "leaky.html").write_text('<img src="https://example.org/x.png" alt="x">'
                                         '<script src="//cdn.example.com/lib.js"></script>', encoding="utf-8")
    external: list[str] = []
    context = _new_context(browser, external)
    try:
        with serve(tmp_path) as url:
            page = context.new_page()
            failed: list[str] = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.goto(url + "leaky.html", wait_until="load")
            width = page.evaluate("document.images[0].naturalWidth")
    finally:
        context.close()
    assert sorted(external) == ["http://cdn.example.com/lib.js", "https://example.org/x.png"]
    assert sorted(failed) == sorted(external) and width == 0
