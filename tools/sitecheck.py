"""Helpers for testing the built site: build it once, serve it on localhost, find the browser, read pages.

tests/test_site.py checks the built HTML files; tests/test_browser.py loads every page in Chromium. Both get the
site from `build_once`, so one pytest session builds it once, even when spread over several worker processes.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from filelock import FileLock

from tools.build_site import HTML_DIR, build
from tools.toc import ROOT

SCREENSHOT_DIR = ROOT / "_build" / "screenshots"
REPORT_PATH = ROOT / "_build" / "browser_report.json"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
CHROMIUM_NAMES = ("chromium", "chromium-browser")
# Headless Chromium as root in a container, with nothing that phones home (updates, sync, QUIC probes), and every
# host name but 127.0.0.1 made unresolvable, so that a page which tries the network fails visibly.
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


@functools.cache
def build_once(shared: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Build the site afresh into _build/html the first time it is called in this process; return the result.

    The old _build/html is removed first, so that no page of an earlier build (a renamed or removed chapter) is
    tested or counted in the site's size. `shared` is a folder that every process of one test run sees (the worker
    processes of pytest-xdist): the first to get there builds, under a lock, and leaves the result there for the
    others, which wait for it instead of building again.
    """
    if shared is None:
        shutil.rmtree(HTML_DIR, ignore_errors=True)
        return build()
    record = Path(shared) / "site_build.json"
    with FileLock(Path(shared) / "site_build.lock"):
        if not record.is_file():
            shutil.rmtree(HTML_DIR, ignore_errors=True)
            result = build()
            fields = {"args": result.args, "returncode": result.returncode, "stdout": result.stdout,
                      "stderr": result.stderr}
            partial = record.with_name(f".{record.name}.{os.getpid()}.tmp")
            partial.write_text(json.dumps(fields), encoding="utf-8")
            os.replace(partial, record)
        return subprocess.CompletedProcess(**json.loads(record.read_text(encoding="utf-8")))


def find_chromium(environ: dict[str, str] | None = None) -> str:
    """Return the path of the Chromium to test with: $CHROMIUM if set, else Debian's `chromium` on the PATH."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("CHROMIUM", "").strip()
    if explicit:
        if not (Path(explicit).is_file() and os.access(explicit, os.X_OK)):
            raise FileNotFoundError(f"CHROMIUM={explicit!r} is not an executable file; unset it to use `chromium` "
                                    f"from the PATH, or point it at a Chromium or Chrome binary")
        return explicit
    for name in CHROMIUM_NAMES:
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            return found
    raise FileNotFoundError("no Chromium found (looked for $CHROMIUM, then " + ", ".join(CHROMIUM_NAMES)
                            + " on the PATH). `make test` installs Debian's chromium with apt-get; elsewhere "
                            "install Chromium and set CHROMIUM=/path/to/chromium")


def is_local(url: str) -> bool:
    """Return whether loading `url` stays on this machine (localhost, or a data:/blob:/about: URL)."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "file"):
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and (parts.hostname or "") in LOCAL_HOSTS


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serve files without logging each request to stderr."""

    def log_message(self, format: str, *args) -> None:
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve `directory` over HTTP on a free port of 127.0.0.1 in a background thread; yield its base URL."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot serve {directory}: not a directory (build the site first: `make site`)")
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def site_size(directory: Path = HTML_DIR) -> int:
    """Return the total size in bytes of every file of the built site."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def local_file(url: str, base_url: str, directory: Path = HTML_DIR) -> Path | None:
    """Return the file of the served site that `url` names, or None when it is not under `base_url`."""
    if not url.startswith(base_url):
        return None
    path = unquote(urlsplit(url).path)[len(urlsplit(base_url).path):]
    target = Path(directory) / path
    if target.is_dir():
        target = target / "index.html"
    return target if target.is_file() else None


class _Anchors(HTMLParser):
    """Collect every id (and <a name>) a page defines: the targets a #fragment can point at."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if value and (key == "id" or (tag == "a" and key == "name")):
                self.anchors.add(value)


def anchors_in(html: str) -> set[str]:
    """Return the ids and <a name> values defined in an HTML page."""
    if not isinstance(html, str):
        raise TypeError(f"html must be a str, got {type(html).__name__}")
    parser = _Anchors()
    parser.feed(html)
    return parser.anchors


def screenshot_name(entry: str, prefix: str = "") -> str:
    """Return the screenshot file name for a table-of-contents entry: chapters/intro -> chapters-intro.png."""
    if not entry or entry.startswith("/") or ".." in Path(entry).parts:
        raise ValueError(f"entry must be a relative path inside the book, like 'chapters/intro', got {entry!r}")
    return prefix + str(Path(entry).with_suffix("")).replace("/", "-") + ".png"
