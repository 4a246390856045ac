"""Build the static site into _build/html with warnings as errors: `make site`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.toc import ROOT

HTML_DIR = ROOT / "_build" / "html"


def build(root: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a full jupyter-book build (every page re-read, so no warning hides in a cached page)."""
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(root),
               "--all", "--warningiserror", "--keep-going"]
    return subprocess.run(command, cwd=root, capture_output=True, text=True)


def main() -> int:
    """Build the site, echo the build log and return its exit status."""
    result = build()
    print(result.stdout, end="")
    print(result.stderr, end="", file=sys.stderr)
    if result.returncode == 0:
        print(f"\nSite built: open {HTML_DIR / 'index.html'} or run `make serve`.")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
