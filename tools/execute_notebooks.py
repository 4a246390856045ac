"""Re-execute notebooks top to bottom in a fresh kernel and store their outputs: `make notebooks`.

Usage: python -m tools.execute_notebooks [NOTEBOOK ...]   (default: every notebook in _toc.yml)
A notebook is only rewritten when its whole run succeeded, so a failure never leaves it half-written.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tools.outputs_cpu import record_cpu
from tools.toc import ROOT, toc_notebooks
from utils.environment import apply_defaults
from utils.progress import QUIET_ENV

NOTEBOOK_BUDGET_S = 90.0  # what a notebook should take on a 2-core laptop CPU: reported against, never enforced
CELL_TIMEOUT_S = 600


def prepare_kernel_environment() -> None:
    """Set what every kernel the tooling starts inherits: the utils defaults (Keras backend, quiet TensorFlow) and
    no progress bars, so that stored outputs hold nothing that changes from run to run."""
    apply_defaults()
    os.environ[QUIET_ENV] = "1"


def execute(path: Path) -> float:
    """Execute one notebook in place from a fresh kernel; return the wall time in seconds."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,  # timings would make every re-run a spurious diff
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    record_cpu(notebook)  # nbval compares exactly only on this CPU model (tools/outputs_cpu.py)
    write_notebook(notebook, path)
    return elapsed


def write_notebook(notebook: nbformat.NotebookNode, path: Path) -> None:
    """Replace the notebook at `path` in one step, keeping its permissions: never a half-written file."""
    fd, tmp = tempfile.mkstemp(suffix=".ipynb", dir=path.parent)
    os.close(fd)
    try:
        nbformat.write(notebook, tmp)
        shutil.copymode(path, tmp)  # mkstemp creates owner-only files; keep the notebook's own permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def budget_line(name: str, seconds: float, budget: float = NOTEBOOK_BUDGET_S) -> str:
    """One line of the run-time report: the time beside the budget, flagged when over it."""
    flag = "  OVER BUDGET" if seconds > budget else ""
    return f"{seconds:7.1f} s of {budget:.0f} s  {name}{flag}"


def main(argv: list[str]) -> int:
    """Execute the named notebooks (or all in the table of contents) and report their times against the budget.

    Exit status 0 when every run succeeded (a failing cell raises, with its notebook left untouched); a notebook
    over its time budget is reported, not an error, since run times depend on the machine and its load.
    """
    prepare_kernel_environment()
    paths = [Path(arg).resolve() for arg in argv] or toc_notebooks()
    times = {}
    for path in paths:
        name = str(path.relative_to(ROOT))
        print(f"executing {name} ...", flush=True)
        times[name] = execute(path)
        print(f"  done: {budget_line(name, times[name]).strip()}", flush=True)
    over = [name for name, seconds in times.items() if seconds > NOTEBOOK_BUDGET_S]
    if len(paths) > 1:
        print("run times:")
        print("\n".join(budget_line(name, seconds) for name, seconds in times.items()))
    if over:
        print(f"{len(over)} notebook(s) over the {NOTEBOOK_BUDGET_S:.0f} s budget (a report, not an error): "
              f"{', '.join(over)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
