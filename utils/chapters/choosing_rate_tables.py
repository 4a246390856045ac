"""Reading training curves and gathering comparisons for the chapter on choosing the rate.

`curves` reads the runs that match some settings as a seed x checkpoint table; `best_checkpoints` finds,
seed by seed, when a stored training curve reached its lowest error and how far its last
reading lies above that; `summary_table` puts paired differences from several sections into one table, one row per
comparison, in points of error or in nats. Nothing here trains: the runs live in `utils.chapters.choosing_rate_sweeps`
and its sibling sweep modules, which this module does not import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from utils.chapters.choosing_rate import bare_interval
from utils.checks import check_count
from utils.stats import PairedDifference

UNITS = {"points": (100.0, 2), "nats": (1.0, 3)}  # unit -> (scale, digits) in summary tables


def curves(table: pd.DataFrame, prefix: str, **settings: Any) -> pd.DataFrame:
    """The `prefix`_<epoch> readings of the runs that match `settings`: one row per seed, one column per epoch.

    Chapter: choosing_rate
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame of stored runs, got {type(table).__name__}")
    columns = {int(c[len(prefix) + 1:]): c for c in table.columns
               if c.startswith(f"{prefix}_") and c[len(prefix) + 1:].isdigit()}
    if not columns:
        raise ValueError(f"table has no columns {prefix}_<epoch>; it has {list(table.columns)}")
    mask = np.ones(len(table), dtype=bool)
    for name, value in settings.items():
        if name not in table.columns:
            raise ValueError(f"table lacks the column {name!r}")
        mask &= (table[name] == value).to_numpy()
    rows = table[mask]
    if rows.empty:
        raise ValueError(f"no stored run matches {settings}")
    if rows["seed"].duplicated().any():
        raise ValueError(f"the settings {settings} match several runs per seed: name every setting that varies")
    epochs = sorted(columns)
    out = rows.set_index("seed").sort_index()[[columns[e] for e in epochs]]
    out.columns = epochs
    return out.astype(float)


def best_checkpoints(table: pd.DataFrame, *, prefix: str, epochs: int, **settings: Any) -> pd.DataFrame:
    """Per seed, the epoch of the lowest `prefix`_k reading, that reading, the last one, and the mean from the third on.

    `table` holds one row per run with columns `prefix`_1 … `prefix`_K, read at every K-th of `epochs` (so K
    checkpoints, the last at the end of training), and a `seed` column; `settings` picks the rows (e.g.
    schedule="none"). Ties go to the earlier checkpoint. Returns a DataFrame indexed by seed with columns
    `best_epoch`, `best`, `final` and `plateau` (the mean of the readings from the third checkpoint on).
    Chapter: choosing_rate
    """
    epochs = check_count(epochs, "epochs")
    readings = curves(table, prefix, **settings)
    count = len(readings.columns)
    if count < 3:
        raise ValueError(f"table needs at least three checkpoint columns {prefix}_1, {prefix}_2, …; "
                         f"it has {list(table.columns)}")
    if list(readings.columns) != list(range(1, count + 1)):
        raise ValueError(f"the checkpoint columns must run {prefix}_1 … {prefix}_K without gaps, got "
                         f"{[f'{prefix}_{k}' for k in readings.columns]}")
    if epochs % count:
        raise ValueError(f"{epochs} epochs do not split into {count} equal checkpoints")
    values = readings.to_numpy()
    return pd.DataFrame({
        "best_epoch": (values.argmin(axis=1) + 1) * (epochs // count),
        "best": values.min(axis=1),
        "final": values[:, -1],
        "plateau": values[:, 2:].mean(axis=1),
    }, index=readings.index)


def summary_table(rows: Sequence[tuple[str, str, PairedDifference, str]]) -> pd.DataFrame:
    """One row per comparison: (question, what is compared as a − b, its paired difference, 'points' or 'nats').

    Points are differences of error rates times 100, written bare with two decimals (the page's default unit, so
    the column stays narrow); nats are differences of losses, with three decimals and their unit.
    Returns a DataFrame with the columns 'question', 'a − b', 'interval' and 'verdict'.
    Chapter: choosing_rate
    """
    if not rows:
        raise ValueError("rows is empty: give at least one (question, compared, difference, unit)")
    records = []
    for row in rows:
        if len(row) != 4:
            raise ValueError(f"each row is (question, compared, difference, unit), got {row!r}")
        question, compared, difference, unit = row
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {sorted(UNITS)}, got {unit!r}")
        scale, digits = UNITS[unit]
        shown_unit = "" if unit == "points" else unit
        records.append({"question": question, "a − b": compared,
                        "interval": bare_interval(difference, scale=scale, unit=shown_unit, digits=digits),
                        "verdict": difference.verdict()})
    return pd.DataFrame(records)


def seeds_text(seeds: Sequence[int]) -> str:
    """How many seeds and which, for prose: '8 seeds (0 to 7)', or '3 seeds (0, 4, 9)' when they are not a run.

    Chapter: choosing_rate
    """
    seeds = sorted(int(seed) for seed in seeds)
    if len(seeds) < 2:
        raise ValueError(f"give at least two seeds, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"the seeds repeat: {seeds}")
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{len(seeds)} seeds ({seeds[0]} to {seeds[-1]})"
    return f"{len(seeds)} seeds ({', '.join(map(str, seeds))})"
