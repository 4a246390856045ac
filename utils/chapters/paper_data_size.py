"""Fig. 10 of the paper, the gain of dropout against the size of the training set, from two stored sweeps.

The sweeps are fig10_mnist1d and fig10_mnist5k (`utils.sweeps`). Each stored row is one run of
`utils.chapters.paper_sweeps.size_run`: a training set of `size` examples drawn with the run's seed, one method ("no
dropout" or "dropout"), the same number of weight updates at every size. A seed draws one training set per size and
both methods train on it, so the gain of dropout at a size is a paired difference over seeds: the test error without
dropout minus the error with it, positive when dropout helps. Every comparison goes through
`utils.stats.paired_difference` and the book's one decision rule (resolved when the 95 % interval excludes 0).

One rule decides where a gain is read at all: at a size where either network's mean training error is above
UNDERFIT, that network underfits, and the gain there is NOT_COMPARABLE (no verdict). A training error above ONSET but
below UNDERFIT keeps its verdict and is reported beside it as a caveat (`Shape.caveat`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from scipy import stats

from utils.checks import check_count
from utils.plotting import PALETTE
from utils.stats import PairedDifference, mean_sd, paired_difference

METHODS: tuple[str, str] = ("no dropout", "dropout")
METRICS: tuple[str, ...] = ("train_error", "test_error")
COLUMNS: tuple[str, ...] = ("size", "method", "seed", "epochs", "updates", *METRICS)
UNDERFIT = 0.1  # a mean training error above this: the network underfits, and the gain there gets no verdict
NOT_COMPARABLE = "underfits: not comparable"
ONSET = 0.01  # a mean training error above this, below UNDERFIT: a caveat beside the verdict, not a verdict


# --- checks (the public functions check their arguments once, then call the private helpers) ----------------------


def _check_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` if it is a table of paired size runs: the columns, both methods, the same seeds everywhere, no repeats."""
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"runs must be a pandas DataFrame of stored size runs, got {type(runs).__name__}")
    missing = sorted(set(COLUMNS) - set(runs.columns))
    if missing:
        raise ValueError(f"runs lacks the column(s) {missing}: pass a table of the fig10 sweeps (load_results)")
    if runs.empty:
        raise ValueError("runs is empty: the sweep has no stored rows yet")
    methods = set(runs["method"])
    if methods != set(METHODS):
        raise ValueError(f"runs must hold exactly the methods {list(METHODS)}, got {sorted(methods)}")
    if runs.duplicated(["size", "method", "seed"]).any():
        raise ValueError("runs repeats a (size, method, seed): each run must be stored once")
    seeds = runs.groupby(["size", "method"])["seed"].apply(frozenset)
    if seeds.nunique() != 1 or len(seeds) != runs["size"].nunique() * len(METHODS):
        raise ValueError("unpaired runs: every size must have both methods on the same seeds; load the complete "
                         "table, or keep only the sizes and seeds both methods have")
    if len(next(iter(seeds))) < 2:
        raise ValueError("a paired comparison needs at least two seeds at every size")
    return runs


def _check_metric(metric: str) -> str:
    """`metric` if it is one the size runs store."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return metric


def _matrix(runs: pd.DataFrame, method: str, metric: str) -> pd.DataFrame:
    """One method's `metric` as a table seeds x sizes (both sorted)."""
    chosen = runs[runs["method"] == method]
    return chosen.pivot(index="seed", columns="size", values=metric).sort_index().sort_index(axis=1)


def _gains(runs: pd.DataFrame, metric: str) -> dict[int, PairedDifference]:
    """The paired gain (no dropout - dropout) at each size of checked runs."""
    plain, dropout = (_matrix(runs, method, metric) for method in METHODS)
    return {int(size): paired_difference(plain[size].to_numpy(), dropout[size].to_numpy()) for size in plain.columns}


def underfit_sizes(runs: pd.DataFrame, *, threshold: float = UNDERFIT) -> list[int]:
    """The sizes at which either network's mean training error is above `threshold`: it underfits there.

    A gain measured where a network does not fit its own training set compares an underfitting network, not the
    effect of the data-set size.
    Chapter: paper_data_size
    """
    runs = _check_runs(runs)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be an error rate strictly between 0 and 1, got {threshold!r}")
    train = runs.groupby(["size", "method"])["train_error"].mean().unstack("method")
    return [int(size) for size in train.index[(train > threshold).any(axis=1)]]


# --- tables ------------------------------------------------------------------------------------------------------


def errors(runs: pd.DataFrame, method: str, metric: str = "test_error") -> pd.DataFrame:
    """One method's error as a table, one row per seed and one column per training-set size.

    Chapter: paper_data_size
    """
    runs, metric = _check_runs(runs), _check_metric(metric)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return _matrix(runs, method, metric)


def plan_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per training-set size, the minibatches in one epoch, the epochs and the weight updates every run made.

    Raises when two runs of one size differ in epochs or updates (then the table would hide a difference).
    Chapter: paper_data_size
    """
    runs = _check_runs(runs)
    per_size = runs.groupby("size")[["epochs", "updates"]].nunique()
    uneven = per_size.index[(per_size > 1).any(axis=1)].tolist()
    if uneven:
        raise ValueError(f"runs of the same size made different numbers of epochs or updates at sizes {uneven}")
    plan = runs.groupby("size")[["epochs", "updates"]].first().astype(int)
    plan.insert(0, "minibatches per epoch", plan["updates"] // plan["epochs"])
    return _size_index(plan)


def _size_index(table: pd.DataFrame) -> pd.DataFrame:
    """`table` (one row per size, smallest first) with the sizes written with thousands separators: '5,000'."""
    return table.set_axis([f"{int(size):,}" for size in table.index]).rename_axis("training examples")


def gains(runs: pd.DataFrame, metric: str = "test_error") -> dict[int, PairedDifference]:
    """Dropout's gain at each size: the paired difference, over seeds, of the error without dropout minus with it.

    Positive means dropout lowered the error. Keys are the sizes, smallest first.
    Chapter: paper_data_size
    """
    return _gains(_check_runs(runs), _check_metric(metric))


def _mean_sd_text(values: np.ndarray) -> str:
    """Errors as 'mean ± sd' in percent, one decimal."""
    mean, sd = mean_sd(values)
    return f"{100 * mean:.1f} ± {100 * sd:.1f}"


def _error_columns(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Both methods' `metric` per size of checked runs, as 'mean ± sd' in percent."""
    n = runs["seed"].nunique()
    columns = {}
    for method in METHODS:
        table = _matrix(runs, method, metric)
        columns[f"{method}, % (mean ± sd, {n} seeds)"] = {int(size): _mean_sd_text(table[size].to_numpy())
                                                           for size in table.columns}
    return _size_index(pd.DataFrame(columns))


def error_table(runs: pd.DataFrame, metric: str = "train_error") -> pd.DataFrame:
    """Per size (written '5,000'), both methods' error in percent, as mean ± sd over seeds (sample sd).

    Chapter: paper_data_size
    """
    return _error_columns(_check_runs(runs), _check_metric(metric))


def gain_table(runs: pd.DataFrame, metric: str = "test_error") -> pd.DataFrame:
    """Per size: both methods' error (mean ± sd over seeds, in %), the gain, its 95 % interval and the verdict.

    Sizes are written with thousands separators ('5,000').
    At a size where a network underfits (`underfit_sizes`), the verdict reads NOT_COMPARABLE and the gain and its
    interval are left blank ('–'), so that no one reads them as findings; a resolved loss says so.
    An interval end that would round to 0.0 at one decimal gets two, so that its sign shows ('-0.97 to -0.03').
    Chapter: paper_data_size
    """
    runs, metric = _check_runs(runs), _check_metric(metric)
    table = _error_columns(runs, metric)
    found = _gains(runs, metric)
    underfit = set(underfit_sizes(runs))
    table["gain, points"] = ["–" if size in underfit else f"{100 * gain.mean:+.1f}"
                             for size, gain in found.items()]
    table["95 % interval"] = ["–" if size in underfit else interval_ends(gain) for size, gain in found.items()]
    table["verdict"] = [NOT_COMPARABLE if size in underfit else _verdict(gain) for size, gain in found.items()]
    return table


def interval_ends(gain: PairedDifference) -> str:
    """The ends of the gain's interval in points, e.g. '+2.1 to +4.1'; two decimals where an end would read 0.0.

    Chapter: paper_data_size
    """
    ends = 100 * np.array([gain.low, gain.high])
    digits = 2 if (np.abs(ends) < 0.05).any() else 1
    return f"{ends[0]:+.{digits}f} to {ends[1]:+.{digits}f}"


def gain_text(gain: PairedDifference) -> str:
    """A gain for a sentence: its mean in points and, in brackets, its interval's ends: '+3.1 points (+2.1 to +4.1)'.

    Chapter: paper_data_size
    """
    return f"{100 * gain.mean:+.1f} points ({interval_ends(gain)})"


def _verdict(gain: PairedDifference) -> str:
    """The gain's verdict, saying which way a resolved one goes when it is a loss."""
    return "resolved (a loss)" if gain.resolved and gain.mean < 0 else gain.verdict()


def sizes_where(found: Mapping[int, PairedDifference], outcome: str) -> list[int]:
    """The sizes at which the gain is `outcome`: "helps" (resolved, > 0), "hurts" (resolved, < 0) or "not resolved".

    Chapter: paper_data_size
    """
    tests = {"helps": lambda g: g.resolved and g.mean > 0, "hurts": lambda g: g.resolved and g.mean < 0,
             "not resolved": lambda g: not g.resolved}
    if outcome not in tests:
        raise ValueError(f"outcome must be one of {sorted(tests)}, got {outcome!r}")
    return [size for size, gain in found.items() if tests[outcome](gain)]


def size_list(sizes: Sequence[int], *, none: str = "none") -> str:
    """Sizes as words for a sentence: '100, 500 and 1,000'; `none` when there are none.

    Chapter: paper_data_size
    """
    words = [f"{int(size):,}" for size in sizes]
    if not words:
        return none
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


@dataclass(frozen=True)
class Shape:
    """Whether the gain rises then falls with the size: the peak size and the two paired comparisons at it.

    `rise` is the gain at the peak minus the gain at the smallest size, `fall` the gain at the peak minus the gain at
    the largest, each a paired difference over seeds. The peak is the size with the largest mean gain, chosen after
    seeing the data, which makes both comparisons somewhat favourable to a peak. `onset` is the dropout network's
    mean training error at the largest size; above ONSET (and below UNDERFIT, where the size would not be compared
    at all) it is a caveat to the fall, reported beside its verdict, not a verdict of its own.
    Chapter: paper_data_size
    """

    peak: int
    smallest: int
    largest: int
    rise: PairedDifference
    fall: PairedDifference
    onset: float = 0.0

    @property
    def training_rises(self) -> bool:
        """Whether the dropout network's training error at the largest size is above ONSET: a caveat to the fall."""
        return self.onset > ONSET

    def caveat(self) -> str:
        """The caveat to the fall in words, e.g. "dropout's training error 1.9 % at 1,000"; '' when there is none."""
        return f"dropout's training error {100 * self.onset:.1f} % at {self.largest:,}" if self.training_rises else ""

    @property
    def rises(self) -> bool:
        """Whether the gain at the peak is resolved above the gain at the smallest size."""
        return self.rise.resolved and self.rise.mean > 0

    @property
    def falls(self) -> bool:
        """Whether the gain at the peak is resolved above the gain at the largest size."""
        return self.fall.resolved and self.fall.mean > 0

    def summary(self) -> str:
        """The shape in words, by the two verdicts, e.g. 'a rise and a fall, both resolved'."""
        if self.rises and self.falls:
            return "a rise and a fall, both resolved"
        if self.falls:
            return "a fall (resolved), but no resolved rise before it"
        if self.rises:
            return "a rise (resolved), but no resolved fall after it"
        return "neither a rise nor a fall that is resolved"


def shape(runs: pd.DataFrame, metric: str = "test_error") -> Shape:
    """Test the paper's shape, a gain that grows with the size and then shrinks: `Shape` at the largest mean gain.

    Chapter: paper_data_size
    """
    return _shape(_check_runs(runs), _check_metric(metric))


def _shape(runs: pd.DataFrame, metric: str) -> Shape:
    """`shape` for checked arguments."""
    plain, dropout = (_matrix(runs, method, metric) for method in METHODS)
    per_seed = plain - dropout  # seeds x sizes: each seed's gain at each size
    sizes = [int(size) for size in per_seed.columns]
    if len(sizes) < 3:
        raise ValueError(f"a rise and a fall need at least three sizes, got {sizes}")
    peak = int(per_seed.mean().idxmax())
    onset = float(_matrix(runs, "dropout", "train_error")[sizes[-1]].mean())
    return Shape(peak=peak, smallest=sizes[0], largest=sizes[-1],
                 rise=paired_difference(per_seed[peak].to_numpy(), per_seed[sizes[0]].to_numpy()),
                 fall=paired_difference(per_seed[peak].to_numpy(), per_seed[sizes[-1]].to_numpy()), onset=onset)


def resolve_chance(gain: PairedDifference, n: int) -> float:
    """The chance that `n` seeds resolve a gain whose true mean and sd are `gain`'s: the paired t-test's power.

    The interval at the gain's level excludes 0 when |t| exceeds its critical value; with the true mean and sd, t
    follows the noncentral t distribution with n - 1 degrees of freedom.
    Chapter: paper_data_size
    """
    if not isinstance(gain, PairedDifference):
        raise TypeError(f"gain must be a PairedDifference, got {type(gain).__name__}")
    return _chance(gain, check_count(n, "n", minimum=2))


def _chance(gain: PairedDifference, n: int) -> float:
    """`resolve_chance` for checked arguments."""
    if gain.sd == 0.0:
        return 1.0 if gain.mean != 0.0 else 0.0
    critical = stats.t.ppf(0.5 + gain.level / 2.0, df=n - 1)
    shift = abs(gain.mean) / (gain.sd / np.sqrt(n))
    return float(stats.nct.sf(critical, n - 1, shift) + stats.nct.cdf(-critical, n - 1, shift))


def seeds_needed(gain: PairedDifference, *, power: float = 0.8, most: int = 10_000) -> int | None:
    """How many seeds would resolve `gain` with probability `power`, were its mean and sd the true ones.

    The smallest n whose `resolve_chance` reaches `power`; None when even `most` seeds would not (a zero mean never
    does). The observed mean and sd are themselves estimates from few seeds, so the answer is a rough guide.
    Chapter: paper_data_size
    """
    if not isinstance(gain, PairedDifference):
        raise TypeError(f"gain must be a PairedDifference, got {type(gain).__name__}")
    if isinstance(power, bool) or not isinstance(power, float | int) or not 0.0 < power < 1.0:
        raise ValueError(f"power must be a number strictly between 0 and 1, got {power!r}")
    low, high = 2, check_count(most, "most", minimum=2)
    if _chance(gain, high) < power:
        return None
    while low < high:  # the chance grows with n: bisect for the fewest seeds that reach `power`
        middle = (low + high) // 2
        low, high = (middle + 1, high) if _chance(gain, middle) < power else (low, middle)
    return low


def compare_with_paper(tables: Mapping[str, pd.DataFrame], metric: str = "test_error") -> pd.DataFrame:
    """The paper's three findings on data-set size, one row each, beside each data set's verdicts.

    Rows: no improvement at the two smallest sizes; a gain that grows with the size up to a point; then shrinks.
    Each cell gives the gain (no dropout − dropout) or the difference of gains, in points, and its verdict. The rise
    and the fall are tested over the sizes at which both networks fit (`underfit_sizes` left out), as `shape` on
    those runs; the fall is NOT_COMPARABLE when fewer than three such sizes remain, and carries `Shape.caveat`.
    Chapter: paper_data_size
    """
    tables, metric = _checked_tables(tables), _check_metric(metric)
    columns = {}
    for title, runs in tables.items():
        found = _gains(runs, metric)
        fits = runs[~runs["size"].isin(underfit_sizes(runs))]
        peaked = _shape(fits, metric) if fits["size"].nunique() >= 3 else _shape(runs, metric)
        smallest = list(found.items())[:2]
        fall = (f"peak − {peaked.largest:,}: {100 * peaked.fall.mean:+.1f} points, {peaked.fall.verdict()}"
                + (f" (caveat: {peaked.caveat()})" if peaked.caveat() else ""))
        columns[title] = {
            "no improvement on the two smallest sizes": "; ".join(
                f"{size:,}: {100 * gain.mean:+.1f} points, {gain.verdict()}" for size, gain in smallest),
            "the gain grows with the size up to a point": (
                f"peak at {peaked.peak:,}; peak − smallest {100 * peaked.rise.mean:+.1f} points, "
                f"{peaked.rise.verdict()}"),
            "then shrinks": fall if fits["size"].nunique() >= 3 else NOT_COMPARABLE,
        }
    return pd.DataFrame(columns).rename_axis("the paper (Fig. 10)")


# --- figures -----------------------------------------------------------------------------------------------------


def _size_axis(ax: Axes, sizes: Sequence[int]) -> None:
    """A log x axis ticked at the sizes, labelled as the paper labels them (100, 500, 1K, 5K, ...)."""
    ax.set_xscale("log")
    ax.set_xticks(list(sizes), labels=[f"{size // 1000}K" if size % 1000 == 0 else f"{size}" for size in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training examples (log scale, 1K = 1,000)")


def _checked_tables(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """`tables` (title -> runs) with every table checked, or a clear error when there is none."""
    if not isinstance(tables, Mapping) or not tables:
        raise ValueError("pass a non-empty mapping of panel title -> stored size runs")
    return {str(title): _check_runs(runs) for title, runs in tables.items()}


def plot_errors(tables: Mapping[str, pd.DataFrame], metric: str = "test_error") -> Figure:
    """Fig. 10 redrawn: both methods' error against the size, mean ± sd over seeds, one panel per data set.

    The panels are stacked, one above the other.
    Chapter: paper_data_size
    """
    tables, metric = _checked_tables(tables), _check_metric(metric)
    fig, axes = plt.subplots(len(tables), 1, figsize=(7.0, 3.6 * len(tables)), squeeze=False, layout="constrained")
    for ax, (title, runs) in zip(axes[:, 0], tables.items()):
        for color, method in zip(PALETTE, METHODS):
            table = _matrix(runs, method, metric)
            mean, sd = table.mean().to_numpy(), table.std(ddof=1).to_numpy()
            ax.plot(table.columns, mean, marker="o", color=color, label=method)
            ax.fill_between(table.columns, mean - sd, mean + sd, color=color, alpha=0.2, linewidth=0)
        sizes = sorted(runs["size"].unique())
        underfit = underfit_sizes(runs)
        if underfit:
            ax.axvspan(underfit[0] / 1.4, underfit[-1] * 1.4, color="0.9", zorder=0, linewidth=0)
            ax.text(np.sqrt(underfit[0] * underfit[-1]), 0.97, "dropout net\nunderfits", ha="center", va="top",
                    transform=ax.get_xaxis_transform(), fontsize=11, color="0.3")
        _size_axis(ax, sizes)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylim(bottom=0)
        ax.set_title(title)
        ax.set_ylabel("test error" if metric == "test_error" else "training error")
    axes[0][0].legend()
    return fig


def plot_gains(tables: Mapping[str, pd.DataFrame], metric: str = "test_error") -> Figure:
    """Dropout's gain per size with its 95 % interval, one stacked panel per data set, filled where resolved.

    Only the sizes at which both networks fit their training sets are drawn (see `underfit_sizes`).

    Chapter: paper_data_size
    """
    tables, metric = _checked_tables(tables), _check_metric(metric)
    fig, axes = plt.subplots(len(tables), 1, figsize=(7.0, 3.4 * len(tables)), squeeze=False, layout="constrained")
    for ax, (title, runs) in zip(axes[:, 0], tables.items()):
        underfit = set(underfit_sizes(runs))
        found = {size: gain for size, gain in _gains(runs, metric).items() if size not in underfit}
        sizes = np.array(list(found))
        means = np.array([100 * gain.mean for gain in found.values()])
        low = np.array([100 * gain.low for gain in found.values()])
        high = np.array([100 * gain.high for gain in found.values()])
        resolved = np.array([gain.resolved for gain in found.values()])
        ax.axhline(0, color=PALETTE[7], linewidth=1)
        ax.errorbar(sizes, means, yerr=[means - low, high - means], fmt="none", ecolor=PALETTE[2], capsize=4,
                    linewidth=1.5)
        ax.plot(sizes[resolved], means[resolved], "o", color=PALETTE[2], label="resolved")
        ax.plot(sizes[~resolved], means[~resolved], "o", markerfacecolor="white", color=PALETTE[2],
                label="not resolved")
        _size_axis(ax, sizes)
        ax.set_xlim(sizes.min() / 1.6, sizes.max() * 1.6)  # room for the end points' markers and caps
        ax.set_title(title)
        ax.set_ylabel("gain (points):\nerror without − with dropout")
    axes[0][0].legend()
    return fig
