"""Re-run a chapter with its seeds shifted and report every assert that fails: `python -m tools.seed_shift`.

Usage:
    python -m tools.seed_shift chapters/overfitting.ipynb                  # shifts 100, 200 and 300
    python -m tools.seed_shift chapters/overfitting.ipynb --shift 7 --shift 1000

A claim a chapter asserts must hold for other seeds, not only the stored ones. This tool copies the notebook in
memory, adds the shift to every seed its code names, executes the copy top to bottom (nothing is written), and lists
the cells whose asserts (or anything else) failed. The seeds it shifts are the integers in `seed=N`, in
`<name>seeds<name> = [a, b, ...]` or `(a, b, ...)`, and in `<name>seeds<name> = range(a[, b])` or
`list(range(...))`. Dataset splits drawn with `seed=` shift too, so a claim is also checked on other splits.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tools.toc import ROOT
from utils.environment import apply_defaults
from utils.progress import QUIET_ENV

SEED_ARGUMENT = re.compile(r"(\bseed\s*=\s*)(\d+)\b")
SEED_LIST = re.compile(r"(\b\w*seeds\w*\s*=\s*)([\[(])([\d,\s]*)([\])])", re.IGNORECASE)
SEED_RANGE = re.compile(r"(\b\w*seeds\w*\s*=\s*(?:list\()?range\()(\d+)(?:(\s*,\s*)(\d+))?(\))", re.IGNORECASE)
DEFAULT_SHIFTS: tuple[int, ...] = (100, 200, 300)


def shift_source(source: str, shift: int) -> str:
    """`source` with `shift` added to every seed it names (see the module docstring for which)."""
    source = SEED_ARGUMENT.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + shift}", source)
    source = SEED_LIST.sub(lambda m: m.group(1) + m.group(2) + re.sub(
        r"\d+", lambda n: str(int(n.group()) + shift), m.group(3)) + m.group(4), source)

    def _range(m: re.Match) -> str:
        if m.group(4) is None:  # range(n): the seeds 0 .. n-1 become shift .. shift+n-1
            return f"{m.group(1)}{shift}, {int(m.group(2)) + shift}{m.group(5)}"
        return f"{m.group(1)}{int(m.group(2)) + shift}{m.group(3)}{int(m.group(4)) + shift}{m.group(5)}"

    return SEED_RANGE.sub(_range, source)


def shifted(notebook: nbformat.NotebookNode, shift: int) -> tuple[nbformat.NotebookNode, int]:
    """A copy of `notebook` with its seeds shifted, and how many code cells changed."""
    copied = copy.deepcopy(notebook)
    changed = 0
    for cell in copied.cells:
        if cell.cell_type == "code":
            new = shift_source(cell.source, shift)
            changed += new != cell.source
            cell.source = new
    return copied, changed


def failures(notebook: nbformat.NotebookNode) -> list[str]:
    """One line per code cell of an executed notebook that raised: its index, the error and the failing line.

    Cells tagged `raises-exception` (a chapter showing an error on purpose) are left out.
    """
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or "raises-exception" in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                trace = "\n".join(output.get("traceback", []))
                trace = re.sub(r"\x1b\[[0-9;]*m", "", trace)
                arrows = [line.strip() for line in trace.splitlines() if line.strip().startswith("---->")]
                where = arrows[-1] if arrows else ""
                found.append(f"cell {index}: {output['ename']}: {output['evalue'][:200]} {where}")
    return found


def run(path: Path, shift: int, *, timeout: int = 900) -> tuple[list[str], int, float]:
    """Execute `path` with its seeds shifted by `shift`; return the failures, the cells changed and the seconds."""
    notebook = nbformat.read(path, as_version=4)
    copied, changed = shifted(notebook, shift)
    start = time.perf_counter()
    client = NotebookClient(copied, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return failures(copied), changed, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Run each notebook at each shift; print the failures; exit 1 when any shift failed."""
    parser = argparse.ArgumentParser(prog="python -m tools.seed_shift", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--shift", type=int, action="append", help=f"default: {', '.join(map(str, DEFAULT_SHIFTS))}")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    os.environ[QUIET_ENV] = "1"
    apply_defaults()
    status = 0
    for notebook in args.notebooks:
        path = notebook if notebook.is_absolute() else (Path.cwd() / notebook)
        if not path.is_file():
            print(f"error: no notebook {notebook}", file=sys.stderr)
            return 2
        for shift in args.shift or DEFAULT_SHIFTS:
            found, changed, seconds = run(path, shift)
            verdict = "every cell ran" if not found else f"{len(found)} failing cell(s)"
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: shift {shift} "
                  f"({changed} cells changed), {seconds:.0f} s: {verdict}", flush=True)
            for line in found:
                print(f"    {line}", flush=True)
            status |= bool(found)
    return status


if __name__ == "__main__":
    sys.exit(main())
