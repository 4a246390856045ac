"""Reading overfitting off training histories: the generalisation gap, the best epoch, and a sweep of both.

A history is a mapping of metric name to per-epoch values, with the training metric under its name ("loss",
"accuracy") and the validation metric under "val_" plus that name, as `utils.training.train_classifier` returns it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from utils.plotting import PALETTE

METRICS: tuple[str, ...] = ("loss", "accuracy")


def _series(history: Mapping[str, Sequence[float]], key: str) -> np.ndarray:
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


def generalisation_gap(history: Mapping[str, Sequence[float]], metric: str = "accuracy",
                       epoch: int | None = None) -> float:
    """Training minus validation accuracy, or validation minus training loss, at 1-based `epoch` (default: last).

    Chapter: overfitting
    """
    _check_metric(metric)
    train, val = _series(history, metric), _series(history, f"val_{metric}")
    if len(train) != len(val):
        raise ValueError(f"{metric!r} has {len(train)} epochs but 'val_{metric}' has {len(val)}")
    if epoch is None:
        epoch = len(train)
    if isinstance(epoch, bool) or not isinstance(epoch, Integral) or not 1 <= epoch <= len(train):
        raise ValueError(f"epoch must be an integer from 1 to {len(train)}, got {epoch!r}")
    gap = train[epoch - 1] - val[epoch - 1]
    return float(gap if metric == "accuracy" else -gap)


def best_epoch(history: Mapping[str, Sequence[float]], metric: str = "loss") -> int:
    """The 1-based epoch with the best validation `metric` (lowest loss, highest accuracy; the first on ties).

    Chapter: overfitting
    """
    values = _series(history, f"val_{_check_metric(metric)}")
    return int(np.argmin(values) if metric == "loss" else np.argmax(values)) + 1


def plot_gap_sweep(histories: Mapping[float, Mapping[str, Sequence[float]]], *, xlabel: str,
                   log_base: float = 2) -> Figure:
    """Plot final training and validation accuracy (left) and their gap (right) against a swept setting.

    Chapter: overfitting
    """
    if not histories:
        raise ValueError("histories is empty: give at least one setting -> history entry")
    settings = sorted(histories)
    if settings[0] <= 0:
        raise ValueError(f"settings must be positive for a log axis, got {settings[0]}")
    if log_base <= 1:
        raise ValueError(f"log_base must exceed 1, got {log_base}")
    train = [_series(histories[s], "accuracy")[-1] for s in settings]
    val = [_series(histories[s], "val_accuracy")[-1] for s in settings]
    gaps = [generalisation_gap(histories[s]) for s in settings]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.6))
    left.plot(settings, train, marker="o", color=PALETTE[0], label="training")
    left.plot(settings, val, marker="o", color=PALETTE[1], label="validation")
    left.set_ylabel("final accuracy")
    left.legend()
    right.plot(settings, gaps, marker="o", color=PALETTE[3])
    right.set_ylabel("accuracy gap (training − validation)")
    right.set_ylim(bottom=0)
    for ax in (left, right):
        ax.set_xscale("log", base=log_base)
        ax.set_xticks(settings, labels=[f"{s:g}" for s in settings])
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    return fig
