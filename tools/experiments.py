"""Run the book's sweeps into the experiment store, data/results/: `python -m tools.experiments` (make experiments).

Usage:
    python -m tools.experiments                 # every sweep: run what is missing, one process per core
    python -m tools.experiments table2 fig9     # only these sweeps (make experiments SWEEP="table2 fig9")
    python -m tools.experiments --list          # each sweep, its runs, and how many are stored
    python -m tools.experiments --verify        # re-run one stored row per sweep and compare (what make test does)
    python -m tools.experiments --scale paper   # the paper's scale: full MNIST (a local file), a GPU; days of runs

Runs already stored are skipped, so a killed build goes on where it stopped, losing only the runs in progress. A
sweep whose code has changed since its rows were stored (its fingerprint differs) is run again from the start. Each
finished run rewrites its sweep's table whole (see utils.store.write_atomic), so no table is ever half written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from tools.outputs_cpu import cpu_model
from utils.environment import apply_defaults
from utils.progress import QUIET_ENV
from utils.store import (
    SCALES,
    StaleResults,
    Sweep,
    load_provenance,
    provenance_path,
    row_key,
    table_path,
    write_atomic,
)
from utils.sweeps import PAPER_SWEEPS, SMOKE, SWEEPS

PACKAGES: tuple[str, ...] = ("numpy", "scipy", "scikit-learn", "torch", "keras", "tensorflow", "tensorflow-cpu",
                             "mnist1d", "mlxtend", "pandas")
THREAD_VARIABLES: tuple[str, ...] = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def gpu_model() -> str | None:
    """The first CUDA GPU's name when PyTorch sees one (the sweeps themselves run on the CPU), else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def commit() -> str:
    """The repository's commit, with '+changes' when the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def versions() -> dict[str, str]:
    """The installed versions of the packages the results may depend on, and Python's."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def provenance(sweep: Sweep, *, workers: int, runs: int, wall_s: float, started: str) -> dict[str, Any]:
    """Where and how a sweep's rows were made: code, packages, machine, threads, date."""
    return {
        "sweep": sweep.name,
        "title": sweep.title,
        "fingerprint": sweep.fingerprint(),
        "commit": commit(),
        "versions": versions(),
        "cpu": cpu_model(),
        "gpu": gpu_model(),
        "device": "cpu",
        "cores": os.cpu_count(),
        "workers": workers,
        "threads_per_run": sweep.threads,
        "platform": platform.platform(),
        "started": started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": runs,
        "build_wall_s": round(wall_s, 1),  # since the build started (several sweeps share its processes)
        "parameters": dict(sweep.parameters),
    }


def _set_threads(threads: int) -> None:
    """Pin every numerical library of this process to `threads` threads (before any of them starts)."""
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    apply_defaults()


def _start_worker(threads: int) -> None:
    """A worker process's set-up: the book's environment defaults, `threads` threads per library, no inner bars."""
    os.environ[QUIET_ENV] = "1"  # the runner's own bar counts the runs; per-epoch bars from two workers would garble it
    _set_threads(threads)
    parent = os.getppid()

    def _exit_with_parent() -> None:
        """End this worker when the runner is gone (killed), instead of waiting forever for work."""
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=_exit_with_parent, daemon=True).start()


def measure(sweep: Sweep, setting: Mapping[str, Any], seed: int) -> tuple[dict[str, Any], float]:
    """Run one pair of `sweep` in this process; return its metrics and its wall time in seconds."""
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(sweep.threads)
    start = time.perf_counter()
    metrics = sweep.measure(setting, seed)
    return metrics, time.perf_counter() - start


@dataclass
class _Table:
    """The rows of one sweep held in memory while it runs, written whole after every finished run."""

    sweep: Sweep
    rows: dict[tuple[str, int], dict[str, Any]]
    started: str
    clock: float
    workers: int

    def add(self, setting: Mapping[str, Any], seed: int, metrics: Mapping[str, Any], wall_s: float) -> None:
        """Store one finished run and rewrite the table."""
        row = {**setting, "seed": seed, **metrics, "wall_s": round(wall_s, 3)}
        self.rows[row_key(row, self.sweep.setting_names)] = row
        self.write()

    def write(self) -> None:
        """Write the table (grid order) and its provenance, each whole."""
        order = {row_key({**setting, "seed": seed}, self.sweep.setting_names): i
                 for i, (setting, seed) in enumerate(self.sweep.pairs())}
        rows = sorted(self.rows.values(), key=lambda row: order[row_key(row, self.sweep.setting_names)])
        frame = pd.DataFrame(rows, columns=list(self.sweep.columns))
        info = provenance(self.sweep, workers=self.workers, runs=len(rows), started=self.started,
                          wall_s=time.perf_counter() - self.clock + self._earlier_wall())
        # the provenance first: a table is never newer than the fingerprint it is checked against
        write_atomic(provenance_path(self.sweep), json.dumps(info, indent=1) + "\n")
        write_atomic(table_path(self.sweep), frame.to_csv(index=False))

    def _earlier_wall(self) -> float:
        """Build time spent by earlier, interrupted invocations on the rows kept from them."""
        return getattr(self, "earlier_wall", 0.0)


def stored_rows(sweep: Sweep) -> tuple[dict[tuple[str, int], dict[str, Any]], float, str | None]:
    """The rows already stored for `sweep` that its current code and grid still define; their build time; why not."""
    path = table_path(sweep)
    if not path.is_file():
        return {}, 0.0, None
    try:
        info = load_provenance(sweep)
    except FileNotFoundError:
        return {}, 0.0, "no provenance"
    if info.get("fingerprint") != sweep.fingerprint():
        return {}, 0.0, "its code changed"
    table = pd.read_csv(path)
    if list(table.columns) != list(sweep.columns):
        return {}, 0.0, "its columns changed"
    wanted = {row_key({**setting, "seed": seed}, sweep.setting_names) for setting, seed in sweep.pairs()}
    rows = {}
    for record in table.to_dict("records"):
        key = row_key(record, sweep.setting_names)
        if key in wanted:
            rows[key] = {name: (value.item() if hasattr(value, "item") else value) for name, value in record.items()}
    return rows, float(info.get("build_wall_s", 0.0)), None


def build(sweeps: Sequence[Sweep], *, workers: int | None = None, quiet: bool = False) -> dict[str, int]:
    """Run every missing pair of `sweeps` on `workers` processes (default: one per core); return the runs made."""
    from tqdm.auto import tqdm

    workers = workers or os.cpu_count() or 1
    by_name = {sweep.name: sweep for sweep in sweeps}
    names = list(by_name)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    tables: dict[str, _Table] = {}
    todo: list[tuple[str, Mapping[str, Any], int]] = []
    for name, sweep in by_name.items():
        for path in (table_path(sweep), provenance_path(sweep)):  # left by a runner killed while writing
            for temporary in path.parent.glob(f".{path.name}.*.tmp"):
                temporary.unlink(missing_ok=True)
        rows, earlier, reason = stored_rows(sweep)
        if reason and not quiet:
            print(f"{name}: stored rows dropped ({reason}); running all {len(sweep.grid) * len(sweep.seeds)} runs",
                  flush=True)
        table = _Table(sweep, rows, now, time.perf_counter(), workers)
        table.earlier_wall = earlier
        tables[name] = table
        todo += [(name, setting, seed) for setting, seed in sweep.pairs()
                 if row_key({**setting, "seed": seed}, sweep.setting_names) not in rows]
    made = dict.fromkeys(names, 0)
    if not todo:
        if not quiet:
            print("every run is stored already", flush=True)
        return made
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no framework state shared with this one
    threads = max(sweep.threads for sweep in sweeps)
    bar = tqdm(total=len(todo), desc="experiments", unit="run", disable=quiet, smoothing=0.05)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(threads,)) as pool:
        pending: dict[Future, tuple[str, Mapping[str, Any], int]] = {}
        queue = iter(todo)
        try:
            for job in _take(queue, 2 * workers):
                pending[pool.submit(measure, by_name[job[0]], *job[1:])] = job
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    name, setting, seed = pending.pop(future)
                    metrics, wall_s = future.result()
                    tables[name].add(setting, seed, metrics, wall_s)
                    made[name] += 1
                    bar.set_postfix_str(f"{name} {dict(setting)} seed {seed}", refresh=False)
                    bar.update()
                    for job in _take(queue, 1):
                        pending[pool.submit(measure, by_name[job[0]], *job[1:])] = job
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        finally:
            bar.close()
    return made


def _take(queue: Iterable, n: int) -> list:
    """Up to `n` items from the iterator `queue`."""
    items = []
    for item in queue:
        items.append(item)
        if len(items) == n:
            break
    return items


@dataclass(frozen=True)
class Check:
    """The result of re-running one stored row: which row, and what differed (empty when it reproduced)."""

    sweep: str
    setting: dict[str, Any]
    seed: int
    differences: dict[str, tuple[Any, Any]]
    exact: bool  # compared bit for bit (the same CPU model as the store's), else within the seed spread

    @property
    def ok(self) -> bool:
        """Whether the re-run reproduced the stored row."""
        return not self.differences


def sample_row(sweep: Sweep, table: pd.DataFrame) -> dict[str, Any]:
    """The stored row to re-run: the quickest run of the sweep (ties: the first in grid order)."""
    return table.loc[table["wall_s"].idxmin()].to_dict()


def verify(sweep: Sweep, *, row: Mapping[str, Any] | None = None) -> Check:
    """Re-run one stored row of sweep `name` in this process and compare its metrics with the stored ones.

    Raises StaleResults, naming the sweep, when the code it depends on changed since the rows were stored. On the CPU
    model that built the store the metrics must agree exactly; on another CPU, numbers within 3 seed standard
    deviations of the stored setting's mean count as reproduced (floating-point sums differ between CPUs).
    """
    from utils.store import load_results

    table = load_results(sweep)  # raises StaleResults when the fingerprint differs
    chosen = dict(row) if row is not None else sample_row(sweep, table)
    setting = {key: _plain(chosen[key]) for key in sweep.setting_names}
    seed = int(chosen["seed"])
    metrics, _ = measure(sweep, setting, seed)
    exact = load_provenance(sweep).get("cpu") == cpu_model()
    same = np.ones(len(table), dtype=bool)
    for key, value in setting.items():
        same &= table[key].to_numpy() == value
    differences = {}
    for metric in sweep.metrics:
        stored, now = _plain(chosen[metric]), metrics[metric]
        if isinstance(stored, str) or isinstance(now, str):
            if exact and str(stored) != str(now):
                differences[metric] = (stored, now)
            continue
        if exact:
            if not (stored == now or (math.isnan(stored) and math.isnan(now))):
                differences[metric] = (stored, now)
        else:
            spread = table.loc[same, metric].astype(float)
            if abs(now - spread.mean()) > 3 * spread.std(ddof=1) + 1e-12:
                differences[metric] = (stored, now)
    return Check(sweep.name, setting, seed, differences, exact)


def _plain(value: Any) -> Any:
    """A pandas or NumPy scalar as a plain Python value."""
    return value.item() if hasattr(value, "item") else value


def describe(sweeps: Sequence[Sweep]) -> str:
    """One line per sweep: its runs, how many are stored (or why none can be used), and their summed run time."""
    lines = []
    for sweep in sweeps:
        rows, _, reason = stored_rows(sweep)
        total = len(sweep.grid) * len(sweep.seeds)
        state = f"stale ({reason})" if reason else f"{len(rows)}/{total} stored"
        minutes = sum(float(row["wall_s"]) for row in rows.values()) / 60
        lines.append(f"{sweep.name:<16} {total:>4} runs ({len(sweep.grid)} settings x {len(sweep.seeds)} seeds), "
                     f"{state}, {minutes:.1f} min of run time: {sweep.title}")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m tools.experiments", description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="*", help=f"sweeps to run (default: all): {', '.join(SWEEPS)}")
    parser.add_argument("--scale", choices=SCALES, default="laptop",
                        help="laptop (default): the stored tables the chapters read; paper: the paper's scale (full "
                             "MNIST from a local file, a GPU when there is one), into data/results/paper/")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes (default: one per core; one in all at the paper's scale on a GPU)")
    parser.add_argument("--list", action="store_true", help="list the sweeps and what is stored, run nothing")
    parser.add_argument("--verify", action="store_true", help="re-run one stored row per sweep and compare")
    parser.add_argument("--smoke", action="store_true",
                        help="run each sweep's first pair shrunk to a few units and updates, store nothing: checks "
                             "the code path (for the paper's scale before hours on a GPU)")
    return parser.parse_args(argv)


def smoke(sweeps: Sequence[Sweep]) -> dict[str, dict[str, Any]]:
    """Run the first pair of each sweep with SMOKE's tiny settings; return each sweep's metrics (nothing is stored)."""
    results = {}
    for sweep in sweeps:
        setting, seed = next(sweep.pairs())
        tiny = dataclasses.replace(sweep, parameters={**sweep.parameters, **SMOKE})
        results[sweep.name], _ = measure(tiny, setting, seed)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run, list or verify the named sweeps; return an exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    registry = SWEEPS if args.scale == "laptop" else PAPER_SWEEPS
    names = args.sweeps or list(registry)
    unknown = [name for name in names if name not in registry]
    if unknown:
        print(f"error: unknown sweep(s) {', '.join(unknown)}; the sweeps are {', '.join(registry)}", file=sys.stderr)
        return 2
    if args.jobs is not None and args.jobs < 1:
        print(f"error: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    sweeps = [registry[name] for name in names]
    if args.list:
        print(describe(sweeps))
        return 0
    if args.smoke and args.scale == "laptop":
        print("error: --smoke checks the paper scale's code path (--scale paper --smoke); at the laptop scale, "
              "--verify re-runs a stored row of each sweep", file=sys.stderr)
        return 2
    if args.smoke:
        _set_threads(1)
        for name, metrics in smoke(sweeps).items():
            print(f"{name}: {metrics}")
        return 0
    if args.verify:
        _set_threads(1)
        failed = 0
        for sweep in sweeps:
            try:
                check = verify(sweep)
            except (StaleResults, FileNotFoundError) as error:
                print(f"{sweep.name}: {error}")
                failed += 1
                continue
            how = "exactly" if check.exact else "within the seed spread"
            verdict = "reproduced " + how if check.ok else f"NOT reproduced ({how}): {check.differences}"
            print(f"{sweep.name}: {check.setting} seed {check.seed}: {verdict}")
            failed += not check.ok
        return 1 if failed else 0
    workers = args.jobs
    if workers is None and args.scale != "laptop" and gpu_model() is not None:
        workers = 1  # one process drives the GPU
    start = time.perf_counter()
    try:
        made = build(sweeps, workers=workers)
    except KeyboardInterrupt:
        print("\ninterrupted: the finished runs are stored; run the same command again to go on", file=sys.stderr)
        return 130
    print(f"{sum(made.values())} runs in {(time.perf_counter() - start) / 60:.1f} min; tables in "
          f"{table_path(sweeps[0]).parent}")
    print(describe(sweeps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
