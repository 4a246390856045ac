"""Reading overfitting off training histories and trained networks, over several seeds.

A history is a mapping of metric name to per-epoch values, with the training metric under its name ("loss",
"accuracy") and the validation metric under "val_" plus that name, as `utils.training.train_classifier` returns it.
The gap and the best epoch read one history; `late_slope` measures whether a curve still climbs; `weight_norm` and
`training_mode_loss` read a trained network; `differences` and `difference_table` compare set-ups run on the same
seeds with the book's paired interval (`utils.stats`); `plot_gap_sweep` draws a sweep over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, PercentFormatter
from numpy.typing import ArrayLike
from torch import nn

from utils.plotting import PALETTE
from utils.stats import PairedDifference, interval_text, paired_difference

METRICS: tuple[str, ...] = ("loss", "accuracy")
History = Mapping[str, Sequence[float]]


def _series(history: History, key: str) -> np.ndarray:
    """Return one metric of a history as a non-empty float array, with a clear error when it is missing."""
    if key not in history:
        raise KeyError(f"the history has no {key!r}; it has {sorted(history)}")
    values = np.asarray(history[key], dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{key!r} must be a non-empty sequence of per-epoch values")
    return values


def _check_metric(metric: str) -> str:
    """Return `metric` if it is 'loss' or 'accuracy'; raise otherwise."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return metric


def _check_int(value: int, name: str, low: int, high: int | None = None) -> int:
    """`value` as an int in [low, high] (no upper bound when `high` is None), or a clear error."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low or (high is not None
                                                                                       and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ValueError(f"{name} must be an integer {bounds}, got {value!r}")
    return int(value)


def generalisation_gap(history: History, metric: str = "accuracy", epoch: int | None = None) -> float:
    """Training minus validation accuracy, or validation minus training loss, at 1-based `epoch` (default: last).

    Chapter: overfitting
    """
    _check_metric(metric)
    train, val = _series(history, metric), _series(history, f"val_{metric}")
    if len(train) != len(val):
        raise ValueError(f"{metric!r} has {len(train)} epochs but 'val_{metric}' has {len(val)}")
    epoch = len(train) if epoch is None else _check_int(epoch, "epoch", 1, len(train))
    gap = train[epoch - 1] - val[epoch - 1]
    return float(gap if metric == "accuracy" else -gap)


def best_epoch(history: History, metric: str = "loss") -> int:
    """The 1-based epoch with the best validation `metric` (lowest loss, highest accuracy; the first on ties).

    Chapter: overfitting
    """
    values = _series(history, f"val_{_check_metric(metric)}")
    return int(np.argmin(values) if metric == "loss" else np.argmax(values)) + 1


def late_slope(history: History, key: str = "val_loss", *, epochs: int = 30) -> float:
    """The least-squares slope, per epoch, of `key` over the last `epochs` epochs: is the curve still moving?

    A single last value above the minimum says little about a noisy curve; a straight line fitted to the whole late
    stretch does, and its slope can be compared across seeds.
    Chapter: overfitting
    """
    values = _series(history, key)
    epochs = _check_int(epochs, "epochs", 2, len(values))
    late = values[-epochs:]
    return float(np.polyfit(np.arange(epochs, dtype=float), late, 1)[0])


def weight_norm(model: nn.Module) -> float:
    """The L2 norm of all the weight matrices of `model`'s linear layers taken together (biases left out).

    Chapter: overfitting
    """
    weights = [layer.weight.detach().flatten() for layer in model.modules() if isinstance(layer, nn.Linear)]
    if not weights:
        raise ValueError("the model has no nn.Linear layer to measure")
    return float(torch.cat(weights).norm())


@torch.no_grad()
def training_mode_loss(model: nn.Module, x: np.ndarray, y: np.ndarray, *, draws: int = 10, seed: int = 0) -> float:
    """The mean cross-entropy of `model` in training mode (dropout on), averaged over `draws` random masks.

    This is the loss dropout training minimises, which evaluation mode does not show. The masks come from `seed`
    inside a forked random state, so the caller's random streams are untouched; the model's mode is restored.
    Chapter: overfitting
    """
    draws = _check_int(draws, "draws", 1)
    seed = _check_int(seed, "seed", 0)
    inputs, labels = torch.as_tensor(np.asarray(x, dtype=np.float32)), torch.as_tensor(np.asarray(y, dtype=np.int64))
    if len(inputs) == 0 or len(inputs) != len(labels):
        raise ValueError(f"need as many labels as inputs, at least one: got {len(inputs)} and {len(labels)}")
    was_training = model.training
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        losses = [nn.functional.cross_entropy(model(inputs), labels).item() for _ in range(draws)]
    model.train(was_training)
    return float(np.mean(losses))


def differences(scores: Mapping[str, Mapping[str, ArrayLike]],
                baseline: str) -> dict[str, dict[str, PairedDifference]]:
    """Each set-up's paired difference from `baseline`, measure by measure: `scores[setup][measure]` per seed.

    Every set-up must hold the same measures, one score per seed in the same seed order; the result maps each
    set-up other than `baseline` to {measure: paired_difference(setup, baseline)}.
    Chapter: overfitting
    """
    if baseline not in scores:
        raise KeyError(f"no baseline {baseline!r} among the set-ups {list(scores)}")
    measures = list(scores[baseline])
    for setup, values in scores.items():
        if list(values) != measures:
            raise ValueError(f"{setup!r} has the measures {list(values)}, the baseline has {measures}")
    return {setup: {m: paired_difference(values[m], scores[baseline][m]) for m in measures}
            for setup, values in scores.items() if setup != baseline}


def difference_table(diffs: Mapping[str, Mapping[str, PairedDifference]], *, scales: Mapping[str, float],
                     digits: Mapping[str, int],
                     no_verdict: Mapping[tuple[str, str], str] | None = None) -> pd.DataFrame:
    """The paired differences of `differences` as a table: one row per set-up and measure; mean, interval, verdict.

    A measure's numbers are multiplied by `scales[measure]` (100: accuracies as percentage points) and shown with
    `digits[measure]` decimals. `no_verdict` maps a (set-up, measure) pair to the text shown instead of its verdict:
    for a measure that chose the set-up (early stopping's validation loss), a better value is no evidence.
    Chapter: overfitting
    """
    no_verdict = dict(no_verdict or {})
    unknown = [key for key in no_verdict if key[0] not in diffs or key[1] not in diffs[key[0]]]
    if unknown:
        raise KeyError(f"no_verdict names (set-up, measure) pairs that are not in the table: {unknown}")
    rows = {}
    for setup, by_measure in diffs.items():
        for measure, diff in by_measure.items():
            if measure not in scales or measure not in digits:
                raise KeyError(f"give a scale and digits for the measure {measure!r}")
            scale, places = scales[measure], digits[measure]
            if not isinstance(scale, Real) or scale <= 0:
                raise ValueError(f"the scale of {measure!r} must be a positive number, got {scale!r}")
            places = _check_int(places, f"digits of {measure!r}", 0)
            rows[(setup, measure)] = {
                "mean difference": f"{diff.mean * scale:+.{places}f}",
                "95 % interval": f"{diff.low * scale:+.{places}f} to {diff.high * scale:+.{places}f}",
                "verdict": no_verdict.get((setup, measure), diff.verdict())}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["set-up", "measure"])
    return table


def plot_gap_sweep(runs: Mapping[float, Sequence[History]], *, xlabel: str, log_base: float = 2,
                   log_gap: bool = False) -> Figure:
    """Plot final training and validation accuracy (left) and their gap (right) against a swept setting.

    `runs` maps each setting to its histories, one per seed. Lines join the means over seeds; dots are the seeds.
    With `log_gap`, the gap panel is drawn on log-log axes with the least-squares line through the mean gaps.
    Chapter: overfitting
    """
    if not runs:
        raise ValueError("runs is empty: give at least one setting -> histories entry")
    settings = sorted(runs)
    if settings[0] <= 0:
        raise ValueError(f"settings must be positive for a log axis, got {settings[0]}")
    if log_base <= 1:
        raise ValueError(f"log_base must exceed 1, got {log_base}")
    if any(len(runs[s]) == 0 for s in settings):
        raise ValueError("every setting needs at least one history")
    finals = {"training": [[_series(h, "accuracy")[-1] for h in runs[s]] for s in settings],
              "validation": [[_series(h, "val_accuracy")[-1] for h in runs[s]] for s in settings],
              "gap": [[generalisation_gap(h) for h in runs[s]] for s in settings]}
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.5, 3.4))
    panels = {"training": (left, PALETTE[0]), "validation": (left, PALETTE[1]), "gap": (right, PALETTE[3])}
    for name, (ax, color) in panels.items():
        for setting, values in zip(settings, finals[name], strict=True):
            ax.scatter([setting] * len(values), values, s=12, color=color, alpha=0.5, linewidths=0)
        ax.plot(settings, [np.mean(v) for v in finals[name]], marker="o", color=color, label=name)
    left.set_ylabel("final accuracy")
    left.legend()
    right.set_ylabel("accuracy gap (training − validation)")
    if log_gap:
        mean_gaps = np.array([np.mean(v) for v in finals["gap"]])
        if (mean_gaps <= 0).any():
            raise ValueError("log_gap needs a positive mean gap at every setting")
        slope, intercept = np.polyfit(np.log(settings), np.log(mean_gaps), 1)
        right.plot(settings, np.exp(intercept) * np.asarray(settings, dtype=float) ** slope, color=PALETTE[7],
                   linestyle="--", linewidth=1.2, label=f"fitted line, slope {slope:.2f}".replace("-", "−"))
        right.set_yscale("log")
        right.legend()
    else:
        right.set_ylim(bottom=0)
    for ax in (left, right):
        ax.set_xscale("log", base=log_base)
        ax.set_xticks(settings, labels=[f"{s:g}" for s in settings])
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    if log_gap:  # labelled ticks at doublings of 5 %, with one near the bottom of the axis
        low, high = right.get_ylim()
        ticks = 0.05 * 2.0 ** np.arange(-4, 5)
        if not (ticks[(ticks >= low) & (ticks <= 1.2 * low)]).size and (ticks < low).any():
            low = 0.95 * ticks[ticks < low].max()  # no tick near the bottom: reach the next one down
            right.set_ylim(low, high)
        right.set_yticks([t for t in ticks if low <= t <= high])
        right.yaxis.set_minor_formatter(NullFormatter())
    return fig


def paired_text(a: ArrayLike, b: ArrayLike, *, scale: float = 100.0, unit: str = "points",
                digits: int = 1) -> str:
    """A paired difference a - b over seeds in words: per-seed values when they agree, else the interval.

    Where the seeds disagree, the text is the interval and its verdict (`utils.stats.interval_text`).
    When every seed's difference rounds to one value v, the text is '-3.4 points on each of the 3 seeds'; when they
    span at most two steps of the last digit, '-3.5 to -3.4 points, seed by seed (each of the 3 seeds in that
    range)'. A t-interval from a few nearly equal differences is too narrow to read as one; the per-seed values say
    more, and the wording must not read as an interval.
    Chapter: overfitting
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError(f"need two equal-length 1-D sequences of at least two values, got {a.shape} and {b.shape}")
    rounded = np.round((a - b) * scale, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    unit_text = f" {unit}" if unit else ""
    low, high = rounded.min(), rounded.max()
    if low == high:
        return f"{low:+.{digits}f}{unit_text} on each of the {a.size} seeds"
    if high - low <= 2 * 10.0 ** -digits + 1e-9:
        return (f"{low:+.{digits}f} to {high:+.{digits}f}{unit_text}, seed by seed "
                f"(each of the {a.size} seeds in that range)")
    return interval_text(paired_difference(a, b), scale=scale, unit=unit, digits=digits)
