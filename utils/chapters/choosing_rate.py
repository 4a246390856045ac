"""Reading stored sweeps to choose a drop rate: picks by validation error, regret, flat bands and paired comparisons.

Every function takes a stored sweep's table (one row per setting and seed, as `utils.store.load_results` returns it)
and compares settings seed by seed with `utils.stats.paired_difference`, the book's one decision rule. The runs
themselves live in `utils.chapters.choosing_rate_sweeps` and `utils.chapters.choosing_rate_lr`. Rates are drop rates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from utils.checks import check_count, check_rate, check_seed
from utils.stats import PairedDifference, paired_difference


def _check_table(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """`table` if it is a DataFrame holding `columns` and a seed column, or a clear error."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame of stored runs, got {type(table).__name__}")
    missing = [name for name in (*columns, "seed") if name not in table.columns]
    if missing:
        raise ValueError(f"table lacks the columns {missing}; it has {list(table.columns)}")
    return table


def _select(table: pd.DataFrame, metric: str, settings: Mapping[str, Any]) -> pd.Series:
    """The metric of the rows matching `settings`, one value per seed, indexed and sorted by seed."""
    mask = np.ones(len(table), dtype=bool)
    for name, value in settings.items():
        mask &= np.isclose(table[name], value) if isinstance(value, float) else (table[name] == value).to_numpy()
    rows = table[mask]
    if rows.empty:
        raise ValueError(f"no stored run matches {dict(settings)}")
    if rows["seed"].duplicated().any():
        raise ValueError(f"the settings {dict(settings)} match several runs per seed: name every setting that varies")
    return rows.set_index("seed")[metric].sort_index()


def select(table: pd.DataFrame, metric: str, **settings: Any) -> pd.Series:
    """The `metric` of the runs with these `settings`, one value per seed, indexed by seed.

    Chapter: choosing_rate
    """
    _check_table(table, [metric, *settings])
    return _select(table, metric, settings)


def compare(table: pd.DataFrame, metric: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> PairedDifference:
    """The paired difference of `metric`, settings `a` minus settings `b`, over the seeds both have.

    Chapter: choosing_rate
    """
    _check_table(table, [metric, *a, *b])
    first, second = _select(table, metric, a), _select(table, metric, b)
    seeds = first.index.intersection(second.index)
    if len(seeds) < 2:
        raise ValueError(f"a paired comparison needs at least two shared seeds, got {len(seeds)}")
    return paired_difference(first[seeds].to_numpy(), second[seeds].to_numpy())


def flat_band(table: pd.DataFrame, metric: str, *, key: str = "rate", **fixed: Any) -> tuple[Any, list[Any]]:
    """(best value of `key` by mean `metric`, every value of `key` whose paired difference from it is not resolved).

    The best value itself is in the band. `fixed` holds the other settings (e.g. batch_size=100).
    Chapter: choosing_rate
    """
    _check_table(table, [metric, key, *fixed])
    values = sorted(table[key].unique())
    means = {v: _select(table, metric, {**fixed, key: v}).mean() for v in values}
    best = min(values, key=lambda v: (means[v], v))
    band = [v for v in values if v == best
            or not compare(table, metric, {**fixed, key: v}, {**fixed, key: best}).resolved]
    return best, band


def per_seed_choice(table: pd.DataFrame, rates: Sequence[float], *, choose: str = "val_error",
                    report: str = "test_error") -> pd.DataFrame:
    """For each seed, the rate among `rates` with the lowest `choose` metric (ties: the lower rate), and its `report`.

    Returns a DataFrame indexed by seed with columns `rate` and `report`.
    Chapter: choosing_rate
    """
    _check_table(table, ["rate", choose, report])
    rates = sorted({check_rate(rate) for rate in rates})
    if not rates:
        raise ValueError("rates is empty: give at least one drop rate to choose from")
    rows = table[np.isin(table["rate"].round(9), np.round(rates, 9))]
    if set(rows["rate"].round(9)) != set(np.round(rates, 9)):
        raise ValueError(f"the table lacks some of the rates {rates}; it has {sorted(table['rate'].unique())}")
    picked = rows.sort_values(["seed", choose, "rate"]).groupby("seed").head(1)
    return picked.set_index("seed")[["rate", report]].sort_index()


def mean_choice(table: pd.DataFrame, rates: Sequence[float], *, choose: str = "val_error") -> float:
    """The rate among `rates` with the lowest `choose` metric averaged over seeds (ties: the lower rate).

    Chapter: choosing_rate
    """
    _check_table(table, ["rate", choose])
    rates = sorted({check_rate(rate) for rate in rates})
    if not rates:
        raise ValueError("rates is empty: give at least one drop rate to choose from")
    means = {rate: _select(table, choose, {"rate": rate}).mean() for rate in rates}
    return min(rates, key=lambda rate: (means[rate], rate))


def bare_interval(result: PairedDifference, *, scale: float = 100.0, unit: str = "points", digits: int = 2) -> str:
    """The interval alone, e.g. '+0.40 to +1.10 points', for prose that has stated the convention once.

    Chapter: choosing_rate
    """
    if not isinstance(result, PairedDifference):
        raise TypeError(f"result must be a PairedDifference (from paired_difference), got {type(result).__name__}")
    return result.describe(scale=scale, unit=unit, digits=digits).rsplit(" (", 1)[0]


def comparison_table(rows: Mapping[str, PairedDifference], *, scale: float = 100.0, unit: str = "points",
                     digits: int = 2) -> pd.DataFrame:
    """A table of labelled paired differences: mean, interval and verdict, multiplied by `scale` (100: points).

    Chapter: choosing_rate
    """
    if not rows:
        raise ValueError("rows is empty: give at least one label -> PairedDifference")
    check_count(digits, "digits", minimum=0)
    table = pd.DataFrame({
        "mean": [f"{d.mean * scale:+.{digits}f}" for d in rows.values()],
        "95 % interval": [bare_interval(d, scale=scale, unit=unit, digits=digits) for d in rows.values()],
        "verdict": [d.verdict() for d in rows.values()],
    }, index=list(rows))
    table.index.name = "a − b"
    return table


def interaction(table: pd.DataFrame, metric: str, *, key: str, a: Any, b: Any, rate: float,
                base: float = 0.0) -> PairedDifference:
    """The difference of differences (rate - base at key = a) - (rate - base at key = b), paired over seeds.

    It measures how far dropout's effect on `metric` at `rate` (against `base`) changes when `key` goes from `b`
    to `a`; the seeds are those all four settings share.
    Chapter: choosing_rate
    """
    _check_table(table, [metric, key, "rate"])
    rate, base = check_rate(rate), check_rate(base)

    def effect(value: Any) -> pd.Series:
        return (_select(table, metric, {key: value, "rate": rate})
                - _select(table, metric, {key: value, "rate": base}))

    first, second = effect(a).dropna(), effect(b).dropna()
    seeds = first.index.intersection(second.index)
    if len(seeds) < 2:
        raise ValueError(f"an interaction needs at least two seeds shared by all four settings, got {len(seeds)}")
    return paired_difference(first[seeds].to_numpy(), second[seeds].to_numpy())


def gain_grid(table: pd.DataFrame, metric: str, *, key: str, base: float = 0.0, scale: float = 100.0,
              digits: int = 1) -> pd.DataFrame:
    """One row per value of `key`, one column per drop rate: `metric` at that rate minus at `base`, paired.

    Each cell reads 'mean [low, high]' (multiplied by `scale`), with a trailing '*' when the 95 % interval
    excludes 0.
    Chapter: choosing_rate
    """
    _check_table(table, [metric, key, "rate"])
    base = check_rate(base)
    check_count(digits, "digits", minimum=0)
    rates = [r for r in sorted(table["rate"].unique()) if not np.isclose(r, base)]
    if not rates:
        raise ValueError(f"the table holds no drop rate other than the base rate {base:g}")

    def cell(d: PairedDifference) -> str:
        mark = " *" if d.resolved else ""
        low, high = d.low * scale + 0.0, d.high * scale + 0.0
        return f"{d.mean * scale + 0.0:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]{mark}"

    grid = pd.DataFrame({f"p = {r:g}": [cell(compare(table, metric, {key: v, "rate": r}, {key: v, "rate": base}))
                                        for v in sorted(table[key].unique())] for r in rates},
                        index=sorted(table[key].unique()))
    grid.index.name = key
    return grid


def dropout_variance_ratio(x: np.ndarray, rate: float, *, samples: int = 200, seed: int = 0) -> tuple[float, float]:
    """(measured, predicted) ratio of each column's variance after inverted dropout (training) to its variance without.

    Measured over the rows of `x` and `samples` masks; predicted from the column's moments as
    (E[x^2] / (1 - rate) - E[x]^2) / (E[x^2] - E[x]^2), which is 1 / (1 - rate) for a zero-mean column. Both are
    averaged over the columns.
    Chapter: choosing_rate
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"x must be a 2-D array with at least two rows (examples x units), got shape {x.shape}")
    rate, samples = check_rate(rate), check_count(samples, "samples")
    rng = np.random.default_rng(check_seed(seed))
    keep = 1.0 - rate
    dropped = np.concatenate([x * (rng.random(x.shape) < keep) / keep for _ in range(samples)])
    test_var = x.var(axis=0)
    if np.any(test_var <= 0):
        raise ValueError("every column of x must vary across rows (a constant column has no variance to compare)")
    second = (x ** 2).mean(axis=0)
    predicted = (second / keep - x.mean(axis=0) ** 2) / test_var
    return float((dropped.var(axis=0) / test_var).mean()), float(predicted.mean())
