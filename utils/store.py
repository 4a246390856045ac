"""The experiment store: sweeps too long for a notebook, defined in code, run once, stored as tables that chapters read.

A `Sweep` is a grid of settings crossed with seeds and one run function, `run(settings, seed) -> metrics`. The
runner, `python -m tools.experiments` (`make experiments`), runs every pair on every core and stores the results
under `data/results/`:

- `<name>.csv`, one row per run: the settings, the seed, the metrics and the run's wall time in seconds;
- `<name>.json`, the provenance: the commit, package versions, CPU or GPU model, threads, date, and the sweep's
  code fingerprint.

The fingerprint hashes the code of the run function's module and of every `utils` module it imports, directly or
not (docstrings, comments and layout left out), so `make test` can say when a stored table no longer matches the
code that would make it. Files are written whole, to a temporary name first, so that a killed run never leaves a
half-written table.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
# The stored data: data/ in a checkout; in an installed copy of the package (`pip install` without -e, as on Colab),
# utils/_data/, where pyproject.toml's package data puts it.
_INSTALLED_DATA = Path(__file__).resolve().parent / "_data"
DATA_DIR: Path = _INSTALLED_DATA if _INSTALLED_DATA.is_dir() else ROOT / "data"
RESULTS_DIR = DATA_DIR / "results"
RESULTS_ENV = "DROPOUT_IN_DEPTH_RESULTS"  # another folder for the tables (the tests' scratch stores)

Setting = Mapping[str, Any]
_IMPORTABLE: tuple[str, ...] = ("utils", "tests")  # the packages whose code a fingerprint follows
SCALES: tuple[str, ...] = ("laptop", "paper")


class StaleResults(RuntimeError):
    """A stored table was made by code that has changed since, or lacks runs its sweep defines.

    Chapters: paper_mnist, paper_rate, paper_data_size, ensemble, tutorials_offline
    """


@dataclass(frozen=True)
class Sweep:
    """A grid of settings crossed with seeds, the run function that measures one pair, and the metrics it returns.

    Chapters: paper_mnist, paper_rate, paper_data_size, ensemble, tutorials_offline
    """

    name: str
    title: str
    run: str  # "module:function"; the function takes (settings: dict, seed: int) and returns {metric: float | str}
    grid: tuple[Setting, ...]
    seeds: tuple[int, ...]
    metrics: tuple[str, ...]
    threads: int = 1  # CPU threads per run (one process per core runs the sweep)
    parameters: Setting = field(default_factory=dict)  # settings shared by every run, passed in with each
    scale: str = "laptop"  # "laptop": stored in data/results/; "paper": the paper's scale, in data/results/paper/

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"a sweep's name must be a Python identifier, got {self.name!r}")
        if self.scale not in SCALES:
            raise ValueError(f"a sweep's scale must be one of {SCALES}, got {self.scale!r}")
        if ":" not in self.run:
            raise ValueError(f"run must read 'module:function', got {self.run!r}")
        if not self.grid or not self.seeds or not self.metrics:
            raise ValueError(f"sweep {self.name!r}: grid, seeds and metrics must each be non-empty")
        keys = {tuple(sorted(setting)) for setting in self.grid}
        if len(keys) != 1:
            raise ValueError(f"sweep {self.name!r}: every setting of the grid must have the same keys, got {keys}")
        if len({_key(setting) for setting in self.grid}) != len(self.grid):
            raise ValueError(f"sweep {self.name!r}: the grid repeats a setting")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"sweep {self.name!r}: the seeds repeat")
        clash = set(self.setting_names) & ({"seed", "wall_s"} | set(self.metrics))
        if clash:
            raise ValueError(f"sweep {self.name!r}: setting names {sorted(clash)} clash with the seed or metrics")

    @property
    def setting_names(self) -> tuple[str, ...]:
        """The names of the grid's settings, in the grid's order."""
        return tuple(self.grid[0])

    @property
    def columns(self) -> tuple[str, ...]:
        """The stored table's columns: settings, seed, metrics, wall time."""
        return (*self.setting_names, "seed", *self.metrics, "wall_s")

    @property
    def module(self) -> str:
        """The dotted name of the module that holds the run function."""
        return self.run.partition(":")[0]

    def pairs(self) -> Iterator[tuple[Setting, int]]:
        """Every (settings, seed) pair of the sweep, settings outermost."""
        for setting in self.grid:
            for seed in self.seeds:
                yield setting, seed

    def function(self) -> Callable[[dict[str, Any], int], Mapping[str, Any]]:
        """Import and return the run function."""
        module, _, name = self.run.partition(":")
        return getattr(importlib.import_module(module), name)

    def measure(self, setting: Setting, seed: int) -> dict[str, Any]:
        """Run one pair and return its metrics, checked against the sweep's metric names."""
        result = dict(self.function()({**self.parameters, **setting}, seed))
        if set(result) != set(self.metrics):
            raise ValueError(f"sweep {self.name!r}: the run returned metrics {sorted(result)}, the sweep declares "
                             f"{sorted(self.metrics)}")
        return {metric: result[metric] for metric in self.metrics}

    def fingerprint(self) -> str:
        """A hash of the code the results depend on and of the shared parameters (see `code_fingerprint`)."""
        parameters = json.dumps(self.parameters, sort_keys=True, default=str)
        return code_fingerprint(self.module, extra=parameters)


def _key(setting: Setting) -> str:
    """A setting as a stable string, to match stored rows with the grid."""
    return json.dumps({name: setting[name] for name in sorted(setting)}, default=str)


def row_key(row: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, int]:
    """The (settings, seed) identity of a stored row or of a pair, so that a resumed sweep skips what is done.

    Chapters: paper_mnist, paper_rate, paper_data_size, ensemble, tutorials_offline
    """
    return _key({name: _plain(row[name]) for name in names}), int(row["seed"])


def _plain(value: Any) -> Any:
    """A pandas or NumPy scalar as the Python value the grid holds (1.0 stays a float, 3 an int)."""
    return value.item() if hasattr(value, "item") else value


def utils_imports(module: str) -> set[str]:
    """The `utils` modules that `module` imports, directly or through other `utils` modules, itself included.

    Imports are read from the source, so nothing is imported (and no framework starts) to find them.
    Chapters: paper_mnist, paper_rate, paper_data_size, ensemble, tutorials_offline
    """
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse(_source_path(name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for imported in names:
                if imported.split(".")[0] in _IMPORTABLE and _module_file(imported) is not None:
                    todo.append(imported)
    return seen


def _module_file(module: str) -> Path | None:
    """The source file of a module of this repository (utils.x.y -> utils/x/y.py), or None when there is none."""
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _source_path(module: str) -> Path:
    """The source file of `module`, found without importing it (so no framework starts)."""
    path = _module_file(module)
    if path is None:
        raise ValueError(f"no source file in this repository for module {module!r}")
    return path


def _code_only(source: str) -> str:
    """The module's syntax tree as text, without docstrings: what changes only when the code does."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
        if getattr(node, "type_params", None) == []:  # Python 3.12's new field: dumped as Python 3.11 dumps it
            del node.type_params
    # Python 3.13 leaves empty lists out of the dump unless told: the same text on every Python (Colab's too)
    return ast.dump(tree, annotate_fields=False, **({"show_empty": True} if sys.version_info >= (3, 13) else {}))


def code_fingerprint(module: str, *, extra: str = "") -> str:
    """A short hash of the code of `module` and of every `utils` module it imports (docstrings and comments left out).

    Chapters: paper_mnist, paper_rate, paper_data_size, ensemble, tutorials_offline
    """
    digest = hashlib.sha256(extra.encode())
    for name in sorted(utils_imports(module)):
        digest.update(name.encode() + b"\0" + _code_only(_source_path(name).read_text(encoding="utf-8")).encode())
    return digest.hexdigest()[:16]


def results_dir() -> Path:
    """The folder of stored tables: data/results/, or the folder RESULTS_ENV names.

    Chapters: paper_mnist, paper_rate, paper_data_size, ensemble, tutorials_offline
    """
    folder = os.environ.get(RESULTS_ENV, "").strip()
    return Path(folder) if folder else RESULTS_DIR


def _folder(sweep: Sweep) -> Path:
    """The folder of `sweep`'s scale: data/results/ for the laptop scale, data/results/paper/ for the paper's."""
    return results_dir() if sweep.scale == "laptop" else results_dir() / sweep.scale


def table_path(sweep: Sweep) -> Path:
    """Where `sweep`'s table is stored.

    Chapters: paper_mnist, paper_rate, paper_data_size, ensemble, tutorials_offline
    """
    return _folder(sweep) / f"{sweep.name}.csv"


def provenance_path(sweep: Sweep) -> Path:
    """Where `sweep`'s provenance is stored.

    Chapters: paper_mnist, paper_rate, paper_data_size, ensemble, tutorials_offline
    """
    return _folder(sweep) / f"{sweep.name}.json"


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` whole: to a temporary file in the same folder, then renamed over `path`.

    Chapters: paper_mnist, paper_rate, paper_data_size, ensemble, tutorials_offline
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes the file private; a stored table is for everyone to read
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _command(sweep: Sweep) -> str:
    """The command that makes `sweep`'s table."""
    if sweep.scale == "laptop":
        return f"`make experiments SWEEP={sweep.name}`"
    return f"`python -m tools.experiments --scale {sweep.scale} {sweep.name}`"


def load_provenance(sweep: Sweep) -> dict[str, Any]:
    """The provenance stored with `sweep`'s table (commit, versions, machine, threads, date, fingerprint).

    Chapters: paper_mnist, paper_rate, paper_data_size, ensemble, tutorials_offline
    """
    path = provenance_path(sweep)
    if not path.is_file():
        raise FileNotFoundError(f"no stored provenance for sweep {sweep.name!r} ({path.name}): run "
                                f"{_command(sweep)} to make it")
    return json.loads(path.read_text(encoding="utf-8"))


def load_results(sweep: Sweep, *, complete: bool = True) -> pd.DataFrame:
    """Sweep `sweep`'s stored table, one row per run, in the grid's order; with `complete`, every pair must be there.

    Raises FileNotFoundError when nothing is stored, and StaleResults when runs are missing (with `complete`) or the
    stored fingerprint differs from the code's.
    Chapters: paper_mnist, paper_rate, paper_data_size, ensemble, tutorials_offline
    """
    path = table_path(sweep)
    if not path.is_file():
        raise FileNotFoundError(f"no stored results for sweep {sweep.name!r} ({path.name}): run {_command(sweep)} "
                                f"to make them")
    table = pd.read_csv(path)
    missing_columns = set(sweep.columns) - set(table.columns)
    if missing_columns:
        raise StaleResults(f"sweep {sweep.name!r}: the stored table lacks column(s) {sorted(missing_columns)}: run "
                           f"{_command(sweep)} again")
    stored = load_provenance(sweep).get("fingerprint")
    if stored != sweep.fingerprint():
        raise StaleResults(f"sweep {sweep.name!r}: the code its results depend on has changed since they were stored "
                           f"(fingerprint {stored} stored, {sweep.fingerprint()} now): run {_command(sweep)} again")
    order = {row_key({**setting, "seed": seed}, sweep.setting_names): i for i, (setting, seed) in
             enumerate(sweep.pairs())}
    keys = [row_key(row, sweep.setting_names) for row in table.to_dict("records")]
    table = table.assign(_order=[order.get(key, -1) for key in keys])
    table = table[table["_order"] >= 0].sort_values("_order").drop(columns="_order").reset_index(drop=True)
    if complete and len(table) < len(order):
        raise StaleResults(f"sweep {sweep.name!r}: {len(order) - len(table)} of its {len(order)} runs are not stored "
                           f"yet: run {_command(sweep)} to finish it")
    return table[list(sweep.columns)]
