"""Build the static site into _build/html with warnings as errors: `make site`.

`BOOK_SOLUTIONS=hide make site` builds it for course use, without solutions: the extension below (setup()) drops
every solution, a {solution} block or a gated {solution-start} ... {solution-end} span, and every notebook cell
tagged `solution` (code that works out an exercise's answer); the pages' sources (_sources/, which hold the
solutions) and the download button that offers them are left out too. The default, `BOOK_SOLUTIONS=show`, keeps the
solutions, collapsed where they are dropdowns.

sphinx-exercise's own `hide_solutions` setting is left off: it drops a {solution-start} but leaves the content up
to its {solution-end}, and the end marker, which no HTML writer knows, stops the build with a NotImplementedError
(sphinx-exercise 1.2.1). So sphinx-exercise builds every solution, gated ones merged into one node, and the
extension removes them all afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tools.toc import ROOT

HTML_DIR = ROOT / "_build" / "html"
SOLUTIONS_ENV = "BOOK_SOLUTIONS"
SOLUTIONS_MODES = ("show", "hide")
SOLUTION_CELL_TAG = "solution"  # a notebook cell with this tag is left out of a build without solutions


def solutions_mode(value: str | None = None) -> str:
    """Return "show" or "hide": `value`, else $BOOK_SOLUTIONS, else "show"; raise ValueError for anything else."""
    raw = os.environ.get(SOLUTIONS_ENV, "") if value is None else value
    if not isinstance(raw, str):
        raise TypeError(f"the solutions mode must be a str, got {type(raw).__name__}")
    mode = raw.strip().lower() or "show"
    if mode not in SOLUTIONS_MODES:
        raise ValueError(f"{SOLUTIONS_ENV} must be one of {', '.join(SOLUTIONS_MODES)} (or unset), got {raw!r}")
    return mode


def hidden_solutions_config(root: Path, folder: Path) -> Path:
    """Write `folder`/_config_hide_solutions.yml, root's _config.yml with solutions hidden; return its path."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    sphinx = config.setdefault("sphinx", {})
    sphinx.setdefault("config", {})["hide_solutions"] = False  # see the module's docstring: setup() drops them
    # The pages' sources, copied to _sources/ and offered by the download button, hold the solutions: leave both out.
    sphinx["config"]["html_copy_source"] = False
    sphinx["config"].setdefault("html_theme_options", {})["use_download_button"] = False
    sphinx["recursive_update"] = True  # merge these into Jupyter Book's theme options instead of replacing them
    sphinx["extra_extensions"] = [*sphinx.get("extra_extensions", []), "tools.build_site"]  # see setup() below
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "_config_hide_solutions.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def build(root: Path = ROOT, *, solutions: str | None = None,
          output: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a full jupyter-book build (every page re-read, so no warning hides in a cached page).

    `solutions` is "show" or "hide" (default: $BOOK_SOLUTIONS, else "show"). The site goes to root/_build/html,
    or to output/_build/html when `output` is given.
    """
    mode = solutions_mode(solutions)
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(root),
               "--all", "--warningiserror", "--keep-going"]
    if output is not None:
        command += ["--path-output", str(output)]
    if mode == "hide":
        command += ["--config", str(hidden_solutions_config(root, Path(output or root) / "_build"))]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(command, cwd=root, capture_output=True, text=True, env=env)


def main() -> int:
    """Build the site, echo the build log and return its exit status."""
    try:
        mode = solutions_mode()
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    result = build(solutions=mode)
    print(result.stdout, end="")
    print(result.stderr, end="", file=sys.stderr)
    if result.returncode == 0:
        note = " (without solutions)" if mode == "hide" else ""
        print(f"\nSite built{note}: open {HTML_DIR / 'index.html'} or run `make serve`.")
    return result.returncode


def setup(app) -> dict:
    """Sphinx extension, loaded only by builds without solutions: drop every solution and cell tagged `solution`."""
    from docutils import nodes
    from sphinx.transforms import SphinxTransform
    from sphinx_exercise.nodes import solution_node

    class RemoveSolutions(SphinxTransform):
        """Remove every solution node, and every notebook cell (myst-nb marks a cell's tags as `tag_<tag>` classes)
        tagged `solution`."""

        default_priority = 500  # after sphinx-exercise merges each gated solution into one node (priority 10)

        def apply(self, **kwargs) -> None:
            for solution in list(self.document.findall(solution_node)):
                solution.parent.remove(solution)
            for cell in list(self.document.findall(nodes.container)):
                if f"tag_{SOLUTION_CELL_TAG}" in cell.get("classes", []):
                    cell.parent.remove(cell)

    app.setup_extension("sphinx_exercise")
    app.add_transform(RemoveSolutions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    sys.exit(main())
