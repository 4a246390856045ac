"""The Table 2 chapter's readings of its stored runs: the learning-rate choice, the table, the paired and McNemar
comparisons, the max-norm check and the figure of validation error against learning rate.

Every function takes the stored sweep `table2` as `utils.store.load_results` returns it (one row per run: method,
lr, seed, the errors, the unit-norm statistics and the packed test-set correctness) and checks it once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator, PercentFormatter

from utils.chapters.paper_sweeps import unpack_bits
from utils.plotting import PALETTE
from utils.stats import format_mean_sd, mcnemar, paired_difference

COLUMNS: tuple[str, ...] = ("method", "lr", "seed", "train_error", "val_error", "test_error", "max_unit_norm",
                            "at_radius", "test_correct")
FAILED = 0.7  # a run fails when its validation error ends above this: near the 90 % of a guess among ten classes
LINE_STYLES: tuple[str, ...] = ("-", "--", ":")  # so that lines lying on each other stay visible
Choice = Mapping[str, float] | pd.Series  # a learning rate per method, as best_rates returns it


def _check_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` if it is a table of the stored sweep table2 with every (method, lr) run on the same seeds."""
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"runs must be the stored table2 DataFrame (load_results), got {type(runs).__name__}")
    missing = [column for column in COLUMNS if column not in runs.columns]
    if missing:
        raise ValueError(f"runs lacks the column(s) {missing}: pass the stored table2 sweep")
    if runs.empty:
        raise ValueError("runs is empty: pass the stored table2 sweep")
    seeds = runs.groupby(["method", "lr"], sort=False)["seed"].apply(lambda s: tuple(sorted(s)))
    if seeds.nunique() != 1 or len(seeds.iloc[0]) != len(set(seeds.iloc[0])):
        raise ValueError("every method and learning rate must be run once on the same seeds; got "
                         f"{seeds.to_dict()}")
    return runs


def _check_choice(runs: pd.DataFrame, chosen: Choice) -> dict[str, float]:
    """`chosen` as a dict, or a clear error unless it gives methods of `runs` learning rates they were run at."""
    if not isinstance(chosen, (Mapping, pd.Series)) or len(chosen) == 0:
        raise TypeError(f"chosen must map methods to learning rates (best_rates), got {chosen!r}")
    chosen = dict(chosen.items())
    for method, lr in chosen.items():
        if not ((runs["method"] == method) & (runs["lr"] == lr)).any():
            raise ValueError(f"no runs of {method!r} at learning rate {lr!r}")
    return chosen


def methods_of(runs: pd.DataFrame) -> list[str]:
    """The methods of the stored runs, in the order the sweep lists them.

    Chapter: paper_mnist
    """
    return list(dict.fromkeys(_check_runs(runs)["method"]))


def grid(runs: pd.DataFrame, column: str = "val_error") -> pd.DataFrame:
    """The mean of `column` over seeds for every method (rows, in the sweep's order) and learning rate (columns).

    Chapter: paper_mnist
    """
    runs = _check_runs(runs)
    if column not in runs.columns or column == "test_correct":
        raise ValueError(f"column must be a numeric column of runs, got {column!r}")
    table = runs.pivot_table(index="method", columns="lr", values=column, aggfunc="mean")
    return table.loc[methods_of(runs)]


def best_rates(runs: pd.DataFrame) -> pd.Series:
    """Each method's learning rate with the lowest mean validation error over the seeds (ties: the smaller rate).

    Chapter: paper_mnist
    """
    return grid(runs, "val_error").idxmin(axis=1).rename("chosen lr")


def failed_counts(runs: pd.DataFrame, *, above: float = FAILED) -> pd.DataFrame:
    """How many seeds failed (validation error above `above`, by default FAILED) per method and learning rate.

    A run whose weights overflow is scored DIVERGED_ERROR; one that blows up without overflowing ends near it. A run
    that ends at 30 to 50 % is bad but has not failed in this sense, and is not counted.
    Chapter: paper_mnist
    """
    runs = _check_runs(runs)
    if not 0.0 < above < 1.0:
        raise ValueError(f"above must be an error rate strictly between 0 and 1, got {above!r}")
    flags = runs.assign(failed=runs["val_error"] > above)
    table = flags.pivot_table(index="method", columns="lr", values="failed", aggfunc="sum")
    return table.loc[methods_of(runs)].astype(int)


def per_seed(runs: pd.DataFrame, chosen: Choice, column: str = "test_error") -> pd.DataFrame:
    """`column` of every method at its chosen learning rate: one row per seed, one column per method.

    Chapter: paper_mnist
    """
    runs = _check_runs(runs)
    chosen = _check_choice(runs, chosen)
    parts = {method: runs[(runs["method"] == method) & (runs["lr"] == lr)].set_index("seed")[column]
             for method, lr in chosen.items()}
    return pd.DataFrame(parts).sort_index()


def at_rate(runs: pd.DataFrame, lr: float, column: str = "val_error") -> pd.DataFrame:
    """`column` of every method at one shared learning rate `lr`: one row per seed, one column per method.

    Chapter: paper_mnist
    """
    return per_seed(runs, dict.fromkeys(methods_of(runs), lr), column)


def summary(runs: pd.DataFrame, chosen: Choice) -> pd.DataFrame:
    """Each method's chosen rate and its test and training errors as 'mean ± sd' in percent; the header says which sd.

    The sd is the sample sd over the seeds; the column headers say so once, with the number of seeds.
    Chapter: paper_mnist
    """
    test, train = per_seed(runs, chosen, "test_error"), per_seed(runs, chosen, "train_error")

    def cells(errors: pd.DataFrame) -> dict[str, str]:
        return {method: format_mean_sd(errors[method]).split(" (")[0] for method in errors}

    over = f"(sd, {len(test)} seeds)"
    return pd.DataFrame({
        "learning rate": pd.Series(dict(chosen.items())).map("{:g}".format),
        f"test error % {over}": cells(test),
        f"training error % {over}": cells(train),
    }).rename_axis("method")


def paired_table(errors: pd.DataFrame, pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Paired differences a − b of per-seed errors (`per_seed`), in points, with the 95 % t-interval and verdict.

    A pair whose runs are identical on every seed gets the verdict "0 (the same runs)" and no p-value.

    Chapter: paper_mnist
    """
    if not isinstance(errors, pd.DataFrame) or errors.empty:
        raise TypeError("errors must be the per-seed table of per_seed (seeds x methods)")
    rows = {}
    for a, b in pairs:
        if a not in errors.columns or b not in errors.columns:
            raise ValueError(f"no column {a!r} or {b!r} in errors; there are {list(errors.columns)}")
        d = paired_difference(errors[a], errors[b])
        if d.sd == 0 and d.mean == 0:  # the same runs twice: nothing to test
            rows[f"{a} − {b}"] = {"mean (points)": 0.0, "sd (points)": 0.0, "low": 0.0, "high": 0.0,
                                  "p-value": np.nan, "seeds": d.n, "verdict": "0 (the same runs)"}
            continue
        rows[f"{a} − {b}"] = {"mean (points)": 100 * d.mean, "sd (points)": 100 * d.sd, "low": 100 * d.low,
                              "high": 100 * d.high, "p-value": d.p_value, "seeds": d.n, "verdict": d.verdict()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("difference")


def mcnemar_by_seed(runs: pd.DataFrame, chosen: Choice, a: str, b: str, *,
                    n_test: int) -> pd.DataFrame:
    """The exact McNemar test of method `a` against `b` on the test set, for each seed's pair of trained nets.

    Chapter: paper_mnist
    """
    bits = per_seed(runs, {a: chosen[a], b: chosen[b]}, "test_correct")
    rows = {}
    for seed, (text_a, text_b) in bits.iterrows():
        test = mcnemar(unpack_bits(text_a, n_test), unpack_bits(text_b, n_test))
        rows[seed] = {f"only {a}": test.only_a, f"only {b}": test.only_b, "p-value": test.p_value,
                      "verdict": test.verdict()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("seed")


def _wrong(runs: pd.DataFrame, chosen: Choice, method: str, n_test: int) -> np.ndarray:
    """Seeds x test digits: 1 where `method`'s run of that seed got the digit wrong."""
    bits = per_seed(runs, {method: chosen[method]}, "test_correct")[method]
    return np.stack([~unpack_bits(text, n_test) for text in bits]).astype(float)


def digit_standard_error(runs: pd.DataFrame, chosen: Choice, a: str, b: str, *, n_test: int) -> float:
    """The standard error, from the choice of test digits alone, of the seed-averaged error difference a − b.

    Each digit contributes its own difference, averaged over the seeds; the error difference is the mean of
    those, so its standard error over redraws of the digits is their sample sd over the square root of n_test.
    Chapter: paper_mnist
    """
    per_digit = (_wrong(runs, chosen, a, n_test) - _wrong(runs, chosen, b, n_test)).mean(axis=0)
    return float(per_digit.std(ddof=1) / np.sqrt(n_test))


def bootstrap_difference(runs: pd.DataFrame, chosen: Choice, a: str, b: str, *, n_test: int,
                         resample: Sequence[str] = ("seeds", "digits"), n_boot: int = 4_000,
                         seed: int = 0) -> tuple[float, float]:
    """The 95 % paired bootstrap interval of the mean test-error difference a − b, as error rates (low, high).

    Each replicate redraws the seeds, the test digits, or both (`resample`), with replacement, and keeps the pairs:
    a drawn seed brings both methods' runs of that seed, a drawn digit both methods' answers on it. The interval is
    the 2.5 and 97.5 percentiles of the replicates (generator seeded with `seed`).
    Chapter: paper_mnist
    """
    allowed = {"seeds", "digits"}
    if not resample or not set(resample) <= allowed:
        raise ValueError(f"resample must name some of {sorted(allowed)}, got {resample!r}")
    if n_boot < 100:
        raise ValueError(f"n_boot must be at least 100, got {n_boot}")
    diff = _wrong(runs, chosen, a, n_test) - _wrong(runs, chosen, b, n_test)  # seeds x digits
    n_seeds = diff.shape[0]
    rng = np.random.default_rng(seed)
    replicates = np.empty(n_boot)
    for i in range(n_boot):
        rows = rng.integers(0, n_seeds, n_seeds) if "seeds" in resample else np.arange(n_seeds)
        cols = rng.integers(0, n_test, n_test) if "digits" in resample else np.arange(n_test)
        replicates[i] = diff[np.ix_(rows, cols)].mean()
    low, high = np.percentile(replicates, [2.5, 97.5])
    return float(low), float(high)


def norm_table(runs: pd.DataFrame, chosen: Choice) -> pd.DataFrame:
    """At each method's chosen rate: the largest incoming-weight norm and the share of units on the radius, over seeds.

    Chapter: paper_mnist
    """
    norms = per_seed(runs, chosen, "max_unit_norm")
    share = per_seed(runs, chosen, "at_radius")
    return pd.DataFrame({
        "chosen lr": pd.Series(chosen),
        "largest unit norm, median": norms.median(),
        "largest unit norm, range": [f"{norms[m].min():.2f} to {norms[m].max():.2f}" for m in norms],
        "units at or above c, mean %": 100 * share.mean(),
    }).rename_axis("method")


def plot_lr_curves(runs: pd.DataFrame, chosen: Choice, *, ax: Axes | None = None,
                   span: tuple[float, float] = (0.0, 0.2)) -> Axes:
    """Mean validation error against learning rate per method, ± 1 sample sd over seeds, the chosen rates starred.

    The y axis shows the error rates in `span` (bottom, top). A mean above the top (failing runs end near chance,
    90 % error) is drawn as a triangle on the top edge, with its value written above the axes, and with the
    number of failed runs (`failed_counts`) where some but not all failed. A star that would hide an earlier
    method's star at the same rate is drawn a little to its right.
    Chapter: paper_mnist
    """
    runs = _check_runs(runs)
    chosen = _check_choice(runs, chosen)
    if not (isinstance(span, tuple) and len(span) == 2 and 0.0 <= span[0] < span[1] <= 1.0):
        raise ValueError(f"span must be (bottom, top), error rates with 0 <= bottom < top <= 1, got {span!r}")
    bottom, top = span
    if ax is None:
        _, ax = plt.subplots()
    stats = runs.groupby(["method", "lr"], sort=False)["val_error"].agg(["mean", "std"])
    failed, n_seeds = failed_counts(runs), runs["seed"].nunique()
    stars: list[tuple[float, float]] = []
    for i, method in enumerate(methods_of(runs)):
        color, style = PALETTE[i % len(PALETTE)], LINE_STYLES[i % len(LINE_STYLES)]
        part = stats.loc[method]
        lrs, mean, sd = part.index.to_numpy(float), part["mean"].to_numpy(), part["std"].to_numpy()
        ax.plot(lrs, np.minimum(mean, top), marker="o", color=color, linestyle=style, label=method)
        ax.fill_between(lrs, np.minimum(mean - sd, top), np.minimum(mean + sd, top), color=color, alpha=0.18,
                        linewidth=0)
        star = (chosen[method], mean[list(lrs).index(chosen[method])])
        shift = sum(1 for lr, value in stars if lr == star[0] and abs(value - star[1]) < 0.05 * (top - bottom))
        stars.append(star)
        ax.plot([star[0] * 1.15 ** shift], [star[1]], marker="*", markersize=16, color=color,
                markeredgecolor="black", zorder=5, linestyle="none")
        off = mean > top
        if off.any():
            ax.plot(lrs[off], np.full(off.sum(), top), marker="^", markersize=9, color=color, linestyle="none",
                    zorder=4)
        for lr, value in zip(lrs[off], mean[off]):
            k = int(failed.loc[method, lr])
            label = f"{value:.0%}" + (f" ({k} of {n_seeds} failed)" if 0 < k < n_seeds else "")
            ax.annotate(label, (lr, top), xytext=(0, 8 + 12 * i), textcoords="offset points",
                        color=color, fontsize=9.5, ha="center", annotation_clip=False)
    ax.set_xscale("log")
    lrs = sorted(runs["lr"].unique())
    ax.set_xticks(lrs, labels=[f"{lr:g}" for lr in lrs])
    ax.minorticks_off()
    ax.set_xlim(lrs[0] / 1.6, lrs[-1] * 1.6)
    ax.set_ylim(bottom, top + 0.02 * (top - bottom))
    ax.yaxis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10]))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("validation error")
    ax.legend(loc="upper left")
    return ax
