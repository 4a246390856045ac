"""The drop-rate chapter's readings of the stored Fig. 9 sweep: errors by rate, paired comparisons and the figure.

The sweep (`utils.sweeps.SWEEPS["fig9"]`) trains one MLP at every drop rate in two modes: "fixed width" keeps n units
per hidden layer, "fixed kept units" widens each layer to n = kept / (1 - rate). A stored table has one row per run:
mode, rate, seed, width_used and the training, validation and test errors. Every comparison here is paired over
seeds (two settings trained with the same seed share their data order) and worded by `utils.stats`' one rule.
Rates are drop rates, as everywhere in the book.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter
from matplotlib.transforms import offset_copy

from utils.plotting import PALETTE
from utils.stats import paired_difference

# The stored modes and their names on the page (the keys of `utils.chapters.paper.PAPER_FINDINGS`).
MODES: dict[str, str] = {"fixed width": "width fixed", "fixed kept units": "kept units fixed"}
METRICS: dict[str, str] = {"train_error": "training error", "val_error": "validation error",
                           "test_error": "test error"}
# What the paper's Fig. 9 shows, as drop rates (PAPER_FINDINGS in words): flat from 0.2 to 0.6 with the width fixed
# (retention 0.4 to 0.8, Fig. 9a); best near 0.4 with the kept units fixed (retention 0.6, Fig. 9b; §7.3, as paper
# summaries quote it).
PAPER_RANGES: dict[str, tuple[float, float]] = {"width fixed": (0.2, 0.6), "kept units fixed": (0.4, 0.4)}
CHANCE_ERROR = 0.9  # the error of a guess among 10 classes: a run near it has learned nothing


def _check_runs(runs: pd.DataFrame, metric: str) -> None:
    """Raise unless `runs` is a stored Fig. 9 table that holds `metric`."""
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"runs must be the stored table (a pandas DataFrame), got {type(runs).__name__}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    missing = {"mode", "rate", "seed", metric} - set(runs.columns)
    if missing:
        raise ValueError(f"runs lacks the column(s) {sorted(missing)}: pass the table load_results returns")
    unknown = set(runs["mode"]) - set(MODES)
    if unknown:
        raise ValueError(f"runs holds unknown modes {sorted(unknown)}; the modes are {sorted(MODES)}")


def _errors(runs: pd.DataFrame, mode: str, metric: str) -> pd.DataFrame:
    """One mode's metric as seeds x rates, checked complete (the arguments are checked by the caller)."""
    part = runs[runs["mode"] == mode]
    if part.empty:
        raise ValueError(f"runs holds no run of mode {mode!r}")
    if part.duplicated(["rate", "seed"]).any():
        raise ValueError(f"runs repeats a (rate, seed) pair in mode {mode!r}")
    table = part.pivot(index="seed", columns="rate", values=metric).sort_index().sort_index(axis=1)
    if table.isna().any().any():
        raise ValueError(f"mode {mode!r} lacks runs: every rate needs every seed, for a paired comparison")
    table.columns = table.columns.astype(float)
    return table


def errors_by_rate(runs: pd.DataFrame, mode: str, metric: str = "test_error") -> pd.DataFrame:
    """One mode's `metric` as a table with a row per seed and a column per drop rate; every pair must be there.

    Chapter: paper_rate
    """
    _check_runs(runs, metric)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    return _errors(runs, mode, metric)


def summary_table(runs: pd.DataFrame, metric: str = "test_error", *, digits: int = 1) -> pd.DataFrame:
    """`metric` in percent as 'mean ± sd' over seeds: a row per drop rate, a column per mode (its page name).

    The sd is the sample standard deviation (ddof=1) over the seeds; the columns' name says so. Rates run down the
    page, so that the table stays narrow however many rates the sweep holds.
    Chapter: paper_rate
    """
    _check_runs(runs, metric)
    columns = {}
    for mode in (mode for mode in MODES if mode in set(runs["mode"])):
        errors = _errors(runs, mode, metric) * 100.0
        columns[MODES[mode]] = {f"{rate:g}": f"{errors[rate].mean():.{digits}f} ± {errors[rate].std(ddof=1):.{digits}f}"
                                for rate in errors.columns}
        n_seeds = len(errors)
    table = pd.DataFrame(columns).rename_axis("drop rate")
    table.columns.name = f"{METRICS[metric]}, % (mean ± sd, {n_seeds} seeds)"
    return table


def best_rate(errors: pd.DataFrame) -> float:
    """The drop rate with the lowest mean error over seeds (the lowest such rate on a tie).

    Chapter: paper_rate
    """
    _check_errors(errors)
    means = errors.mean(axis=0)
    return float(means.index[int(np.argmin(means.to_numpy()))])


def _check_errors(errors: pd.DataFrame) -> None:
    """Raise unless `errors` is a seeds x rates table of finite numbers (as `errors_by_rate` returns)."""
    if not isinstance(errors, pd.DataFrame) or errors.empty:
        raise TypeError("errors must be a non-empty seeds x rates DataFrame, as errors_by_rate returns")
    if not np.isfinite(errors.to_numpy(dtype=float)).all():
        raise ValueError("errors holds NaN or infinite values: every rate needs every seed")


def paired_by_rate(a: pd.DataFrame, b: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """For each drop rate, the paired difference a - b over seeds: mean, 95 % interval, p-value, verdict, as text.

    `a` is a seeds x rates table; `b` is a table like it (rate compared with rate) or one column of seeds (every rate
    of `a` compared with it). Differences are in the errors' units (fractions); the text in percentage points.
    Chapter: paper_rate
    """
    _check_errors(a)
    if isinstance(b, pd.Series):
        b = pd.DataFrame({rate: b for rate in a.columns})
    _check_errors(b)
    if list(a.index) != list(b.index) or list(a.columns) != list(b.columns):
        raise ValueError("a and b must hold the same seeds (rows) and rates (columns), in the same order")
    rows = {}
    for rate in a.columns:
        result = paired_difference(a[rate].to_numpy(), b[rate].to_numpy())
        rows[float(rate)] = {"mean": result.mean, "low": result.low, "high": result.high, "p_value": result.p_value,
                             "resolved": result.resolved,
                             "interval": result.describe(scale=100.0, unit="points", over="seeds"),
                             "verdict": result.verdict()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("drop rate")


def flat_band(errors: pd.DataFrame) -> list[float]:
    """The drop rates whose error is not resolved from the best rate's, paired over seeds (the best rate included).

    Chapter: paper_rate
    """
    best = best_rate(errors)
    versus_best = paired_by_rate(errors, errors[best])
    return [float(rate) for rate in versus_best.index[~versus_best["resolved"].to_numpy(dtype=bool)]]


def interval_table(comparisons: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Comparisons from `paired_by_rate` side by side, one column each: the 95 % interval in points and the verdict.

    A rate at which every seed gave a difference of exactly 0 (a rate compared with itself) reads "0 (the same runs)".
    Chapter: paper_rate
    """
    if not comparisons:
        raise ValueError("comparisons is empty: give at least one name -> paired_by_rate table")
    columns = {}
    for name, table in comparisons.items():
        if not {"low", "high", "verdict"} <= set(table.columns):
            raise ValueError(f"{name!r} is not a paired_by_rate table (it lacks low, high or verdict)")
        columns[name] = {f"{rate:g}": "0 (the same runs)" if row.low == row.high == 0.0 else
                         f"{100 * row.low:+.1f} to {100 * row.high:+.1f}: {row.verdict}"
                         for rate, row in zip(table.index, table.itertuples(), strict=True)}
    return pd.DataFrame(columns).rename_axis("drop rate")


def picked_by_validation(runs: pd.DataFrame, mode: str) -> pd.DataFrame:
    """Per seed, the drop rate with the lowest validation error (the lowest such rate on a tie) and its test error.

    Chapter: paper_rate
    """
    val, test = errors_by_rate(runs, mode, "val_error"), errors_by_rate(runs, mode, "test_error")
    picked = val.to_numpy().argmin(axis=1)
    rates = val.columns.to_numpy()[picked]
    return pd.DataFrame({"rate": rates, "test_error": test.to_numpy()[np.arange(len(test)), picked]},
                        index=val.index)


def rate_words(rates: Sequence[float], grid: Sequence[float]) -> str:
    """Drop rates in words, three or more neighbours on `grid` as a range: [0.1, 0.2, 0.3, 0.5] -> '0.1 to 0.3 and 0.5'.

    Chapter: paper_rate
    """
    grid = [float(rate) for rate in grid]
    positions = sorted({grid.index(float(rate)) for rate in rates if float(rate) in grid})
    if len(positions) != len(set(map(float, rates))):
        raise ValueError(f"every rate must lie on the grid {grid}, got {list(rates)}")
    if not positions:
        return "none"
    runs: list[list[int]] = [[positions[0]]]
    for position in positions[1:]:
        if position == runs[-1][-1] + 1:
            runs[-1].append(position)
        else:
            runs.append([position])
    parts: list[str] = []
    for run in runs:
        if len(run) > 2:
            parts.append(f"{grid[run[0]]:g} to {grid[run[-1]]:g}")
        else:
            parts.extend(f"{grid[position]:g}" for position in run)
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def stalled_runs(runs: pd.DataFrame, *, margin: float = 0.1) -> pd.DataFrame:
    """The runs that learned (almost) nothing: training error within `margin` of chance (0.9 for ten classes).

    Chapter: paper_rate
    """
    _check_runs(runs, "train_error")
    if not 0.0 < margin < CHANCE_ERROR:
        raise ValueError(f"margin must lie in (0, {CHANCE_ERROR}), got {margin!r}")
    stalled = runs[runs["train_error"] >= CHANCE_ERROR - margin]
    return stalled.assign(mode=stalled["mode"].map(MODES)).reset_index(drop=True)


def _window(runs: pd.DataFrame) -> tuple[float, float]:
    """The test-error range to show: the flat bands' mean ± sd with room around them, in whole percent."""
    lows, band_tops = [], []
    for mode in (mode for mode in MODES if mode in set(runs["mode"])):
        errors = _errors(runs, mode, "test_error")
        mean, sd = errors.mean(axis=0), errors.std(axis=0, ddof=1)
        lows.append(float((mean - sd).min()))
        band = flat_band(errors)
        band_tops.append(float((mean + sd)[band].max()))
    low, high = min(lows), max(band_tops)
    span = max(high - low, 0.01)
    return max(0.0, np.floor((low - 0.5 * span) * 100) / 100), min(1.0, np.ceil((high + 2.0 * span) * 100) / 100)


def _draw_mode(ax_test: Axes, ax_train: Axes, runs: pd.DataFrame, mode: str, color: str, top: float) -> None:
    """One mode's test error (its flat band shaded) and training error, mean ± sd; means above `top` marked."""
    for ax, metric in ((ax_test, "test_error"), (ax_train, "train_error")):
        errors = _errors(runs, mode, metric)
        rates, mean, sd = errors.columns.to_numpy(), errors.mean(axis=0).to_numpy(), errors.std(axis=0, ddof=1)
        ax.plot(rates, mean, marker="o", color=color)
        ax.fill_between(rates, mean - sd.to_numpy(), mean + sd.to_numpy(), color=color, alpha=0.2, linewidth=0)
        for rate, value in zip(rates, mean, strict=True):
            if value > top:
                # inside the axes, clear of the panel title: the triangle just under the edge, its value below
                inside = offset_copy(ax.transData, fig=ax.figure, y=-8, units="points")
                ax.plot([rate], [top], marker="^", markersize=12, color=color, transform=inside, zorder=6)
                ax.annotate(f"{value:.0%}", (rate, top), xytext=(0, -18), textcoords="offset points", ha="center",
                            va="top", color=color, fontsize=11)
        if metric == "test_error":
            for rate in flat_band(errors):
                ax.axvspan(rate - 0.05, rate + 0.05, color="0.9", zorder=0, linewidth=0)
            best = best_rate(errors)
            ax.plot([best], [errors[best].mean()], marker="*", markersize=15, color=PALETTE[7], linestyle="none",
                    zorder=5)


def plot_rate_panels(runs: pd.DataFrame, *, ylim: tuple[float, float] | None = None,
                     paper: Mapping[str, tuple[float, float]] | None = None,
                     widths: Mapping[str, str] | None = None) -> Figure:
    """Fig. 9's two panels: per mode, test error zoomed on its flat band above, training error below, by drop rate.

    Lines are means over seeds, bands ± one sample sd. The test panels shade the flat band (rates not resolved from
    the best, a star) and show `ylim` (default: the flat bands with room around them, in whole percent); the
    training panels show 0 to the same top. A mean above the top is a triangle just inside the top edge, labelled
    with its value. `paper` maps a mode's page name to the paper's
    range of drop rates to bracket (low == high marks one rate); `widths` maps it to a subtitle such as 'n = 256'.
    Chapter: paper_rate
    """
    _check_runs(runs, "test_error")
    _check_runs(runs, "train_error")
    bottom, top = _window(runs) if ylim is None else ylim
    if not 0.0 <= bottom < top <= 1.0:
        raise ValueError(f"ylim must be two errors 0 <= bottom < top <= 1, got {ylim!r}")
    modes = [mode for mode in MODES if mode in set(runs["mode"])]
    fig, axes = plt.subplots(2, len(modes), figsize=(4.8 * len(modes), 6.0), sharex=True, sharey="row",
                             squeeze=False, gridspec_kw={"height_ratios": [3, 2]})
    for column, (mode, color) in enumerate(zip(modes, PALETTE, strict=False)):
        ax_test, ax_train = axes[0, column], axes[1, column]
        _draw_mode(ax_test, ax_train, runs, mode, color, top)
        label = MODES[mode]
        ax_test.set_title(f"({'ab'[column]}) {label}" + (f": {widths[label]}" if widths and label in widths else ""))
        if paper and label in paper:
            low, high = paper[label]
            y = top - 0.04 * (top - bottom)
            ax_test.plot([low, high], [y, y], color="0.15", marker="|", markersize=12, linewidth=3)
            ax_test.annotate("the paper's " + ("flat range" if high > low else "best (§7.3)"),
                             ((low + high) / 2, y), xytext=(0, -7), textcoords="offset points", ha="center",
                             va="top", color="0.15", fontsize=10)
        ax_train.set_xlabel("drop rate $p$")
    for row, name in enumerate(("test error", "training error")):
        axes[row, 0].set_ylabel(name)
        for ax in axes[row]:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes[0, 0].set_ylim(bottom, top)
    axes[1, 0].set_ylim(0.0, top)
    rates = sorted(set(runs["rate"].astype(float)))
    axes[1, 0].set_xticks(rates, labels=[f"{rate:g}" for rate in rates])
    n_seeds = runs["seed"].nunique()
    handles = [Line2D([], [], color="0.4", marker="o", label=f"mean over {n_seeds} seeds"),
               Patch(facecolor=PALETTE[0], alpha=0.25, label="± 1 sd over seeds"),
               Line2D([], [], color=PALETTE[7], marker="*", markersize=12, linestyle="none",
                      label="lowest mean test error"),
               Patch(color="0.9", label=f"not resolved from it ({n_seeds} seeds)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=9)
    return fig
