"""The tutorials chapter's readings of its stored runs: arms paired by seed, per-epoch curves, intervals, figures.

The runs themselves, and the Keras machinery behind them (`KerasRunner`, `cross_validate`), are in
`utils.chapters.tutorials_offline_sweeps`, whose code the stored tables depend on; this module only reads tables,
so it can change without making them stale. Every comparison goes through `utils.stats.paired_difference`: the arms
of a sweep ran on the same seeds, so they pair up seed by seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from utils.plotting import PALETTE
from utils.stats import PairedDifference, format_mean_sd, paired_difference


def arms(runs: pd.DataFrame, columns: str | Sequence[str]) -> dict[Any, pd.DataFrame]:
    """Split a stored table into its arms by the values of `columns`, each arm sorted by seed, all on the same seeds.

    With one column the keys are its values; with several, tuples of their values.
    Chapter: tutorials_offline
    """
    key = columns if isinstance(columns, str) else list(columns)
    needed = [key] if isinstance(key, str) else key
    if not set(needed) | {"seed"} <= set(runs.columns):
        raise ValueError(f"runs must have the columns {needed} and 'seed', got {list(runs.columns)}")
    split = {value: part.sort_values("seed").reset_index(drop=True) for value, part in runs.groupby(key, sort=False)}
    seeds = {value: tuple(part["seed"]) for value, part in split.items()}
    if len(set(seeds.values())) != 1:
        raise ValueError(f"the arms of {key!r} ran on different seeds, so they do not pair up: {seeds}")
    return split


def kfold_settings(parameters: Mapping[str, Any], config: str) -> dict[str, Any]:
    """The `runner` settings of configuration `config` of the k-fold sweep: the network its runs train.

    Chapter: tutorials_offline
    """
    if config not in parameters["configs"]:
        raise ValueError(f"config must be one of {sorted(parameters['configs'])}, got {config!r}")
    return {"model": "mlp", "n_in": 30, "n_out": 1, "hidden": parameters["hidden"], "optimizer": "sgd",
            "lr": parameters["lr"], "momentum": parameters["momentum"], **parameters["configs"][config]}


def per_epoch(runs: pd.DataFrame, metric: str) -> np.ndarray:
    """The per-epoch columns `<metric>_1`, `<metric>_2`, ... of a stored table as an array (runs, epochs).

    Chapter: tutorials_offline
    """
    epochs = 0
    while f"{metric}_{epochs + 1}" in runs.columns:
        epochs += 1
    if epochs == 0:
        raise ValueError(f"the table has no per-epoch columns {metric}_1, {metric}_2, ...")
    return runs[[f"{metric}_{e}" for e in range(1, epochs + 1)]].to_numpy(dtype=float)


def epoch_differences(a: np.ndarray, b: np.ndarray) -> list[PairedDifference]:
    """The paired difference a - b at each epoch, from two (seeds, epochs) arrays with their seeds in the same order.

    Chapter: tutorials_offline
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"a and b must be (seeds, epochs) arrays of one shape, got {a.shape} and {b.shape}")
    return [paired_difference(a[:, e], b[:, e]) for e in range(a.shape[1])]


def plot_epoch_comparison(curves: Mapping[str, np.ndarray], *, ylabel: str) -> Figure:
    """Two panels against the epoch: each arm's runs and mean, and the paired difference with its 95 % interval.

    `curves` maps two arm names to (seeds, epochs) arrays of accuracies, seeds in the same order; the right panel
    shows the second arm minus the first, in percentage points.
    Chapter: tutorials_offline
    """
    if len(curves) != 2:
        raise ValueError(f"curves must hold exactly two arms, got {list(curves)}")
    (first, a), (second, b) = ((name, np.asarray(values, dtype=float)) for name, values in curves.items())
    differences = epoch_differences(b, a)
    epochs = np.arange(1, a.shape[1] + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.6))
    for color, name, values in ((PALETTE[0], first, a), (PALETTE[1], second, b)):
        left.plot(epochs, values.T, color=color, alpha=0.2, linewidth=0.8)
        left.plot(epochs, values.mean(axis=0), color=color, label=f"{name} (mean)")
    left.set(xlabel="epoch", ylabel=ylabel, title=f"each of {len(a)} seeds, and their mean")
    left.yaxis.set_major_formatter(PercentFormatter(1.0))
    left.legend()
    mean = np.array([d.mean for d in differences]) * 100
    low, high = (np.array([getattr(d, end) for d in differences]) * 100 for end in ("low", "high"))
    right.fill_between(epochs, low, high, color=PALETTE[2], alpha=0.25, linewidth=0, label="95 % interval")
    right.plot(epochs, mean, color=PALETTE[2], marker="o", label="mean difference")
    right.axhline(0.0, color="black", linewidth=1.0)
    right.set(xlabel="epoch", ylabel="points", title=f"{second} minus {first}, paired by seed")
    right.legend()
    for ax in (left, right):
        ax.set_xticks(epochs)
    return fig


def outcome(result: PairedDifference, *, favoured: tuple[str, str] = ("dropout", "no dropout"),
            over: str = "seeds") -> str:
    """The verdict in words: 'is resolved in favour of dropout: +0.4 to +2.2 points (95 % interval, 20 seeds)'.

    `favoured` names the first arm of the difference (a positive mean) and the second; an interval that includes 0
    reads 'is not resolved: ...'.
    Chapter: tutorials_offline
    """
    interval = result.describe(over=over)
    if not result.resolved:
        return f"is not resolved: {interval}"
    return f"is resolved in favour of {favoured[0] if result.mean > 0 else favoured[1]}: {interval}"


def spread_table(groups: Mapping[str, pd.DataFrame], columns: Mapping[str, str], *, over: str = "seeds",
                 scale: float = 100.0, digits: int = 1) -> pd.DataFrame:
    """'mean ± sd' of each metric in `columns` (name -> label): a row per metric, a column per group.

    The header says once which spread it is and over how many: 'mean ± sd (sd over 20 seeds)'.
    Chapter: tutorials_offline
    """
    sizes = {len(runs) for runs in groups.values()}
    if len(sizes) != 1:
        raise ValueError(f"the groups must hold the same number of {over}, got {sorted(sizes)}")
    table = pd.DataFrame({name: {label: format_mean_sd(runs[metric], scale=scale, digits=digits,
                                                       over=over).split(" (")[0]
                                 for metric, label in columns.items()}
                          for name, runs in groups.items()})
    return table.rename_axis(columns=f"mean ± sd (sd over {sizes.pop()} {over})")


def difference_table(a: pd.DataFrame, b: pd.DataFrame, columns: Mapping[str, str], *,
                     over: str = "seeds") -> pd.DataFrame:
    """One row per metric in `columns` (name -> label): the mean of a - b, its 95 % interval and the verdict.

    `a` and `b` are two arms of a stored table (see `arms`), their rows paired by seed; differences are in points.
    Chapter: tutorials_offline
    """
    if list(a["seed"]) != list(b["seed"]):
        raise ValueError("a and b must hold the same seeds in the same order (see `arms`)")
    rows = {}
    for metric, label in columns.items():
        result = paired_difference(a[metric], b[metric])
        mean = f"{result.mean * 100:+.1f}"
        if mean in ("+0.0", "-0.0"):  # show the sign's size rather than a signed zero
            mean = f"{result.mean * 100:+.2f}"
        rows[label] = {"mean (points)": mean,
                       f"95 % interval ({result.n} {over})": f"{result.low * 100:+.1f} to {result.high * 100:+.1f}",
                       "verdict": result.verdict()}
    return pd.DataFrame(rows).T
