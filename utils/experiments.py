"""Small experiment helpers: train a fresh MLP per setting, read gaps and best epochs off histories, plot sweeps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from torch import nn

from utils.plotting import PALETTE
from utils.progress import progress
from utils.seeding import seed_everything
from utils.training import History, evaluate, make_mlp, train_classifier

Split = tuple[np.ndarray, np.ndarray]
METRICS: tuple[str, ...] = ("loss", "accuracy")


def train_fresh_mlp(
    train: Split,
    val: Split | None,
    *,
    hidden: Sequence[int],
    n_classes: int,
    epochs: int,
    seed: int = 0,
    drop_rate: float = 0.0,
    input_drop_rate: float = 0.0,
    **train_kwargs: Any,
) -> tuple[nn.Sequential, History]:
    """Seed everything with `seed`, build a new MLP sized for `train` and train it; return (model, history).

    The same arguments give the same weights and history, so a run can be repeated, or cut short, exactly.
    `train_kwargs` go to `utils.training.train_classifier` (lr, momentum, weight_decay, max_norm, ...).
    """
    x, y = np.asarray(train[0]), np.asarray(train[1])
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"training inputs must be a non-empty 2-D array (examples x features), got {x.shape}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"training labels must be a 1-D integer array, got shape {y.shape}, dtype {y.dtype}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, Integral) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer of at least 2, got {n_classes!r}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    seed_everything(seed)
    model = make_mlp(x.shape[1], hidden, int(n_classes), drop_rate=drop_rate, input_drop_rate=input_drop_rate)
    history = train_classifier(model, (x, y), val, epochs=epochs, seed=seed, **train_kwargs)
    return model, history


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
    """Training minus validation accuracy, or validation minus training loss, at 1-based `epoch` (default: last)."""
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
    """The 1-based epoch with the best validation `metric` (lowest loss, highest accuracy; the first on ties)."""
    values = _series(history, f"val_{_check_metric(metric)}")
    return int(np.argmin(values) if metric == "loss" else np.argmax(values)) + 1


def accuracies(model: nn.Module, splits: Mapping[str, Split]) -> dict[str, float]:
    """Accuracy of `model` (in eval mode) on each named (inputs, labels) split."""
    if not splits:
        raise ValueError("splits is empty: give at least one name -> (inputs, labels) entry")
    return {name: evaluate(model, x, y)[1] for name, (x, y) in splits.items()}


def plot_gap_sweep(histories: Mapping[float, Mapping[str, Sequence[float]]], *, xlabel: str,
                   log_base: float = 2) -> Figure:
    """Plot final training and validation accuracy (left) and their gap (right) against a swept setting."""
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


def seed_errors(
    train: Split,
    splits: Mapping[str, Split],
    *,
    seeds: Sequence[int],
    hidden: Sequence[int],
    n_classes: int,
    epochs: int,
    label: str = "seeds",
    **train_kwargs: Any,
) -> dict[str, np.ndarray]:
    """Train one fresh MLP per seed and return each named split's error rate (1 − accuracy), one value per seed.

    Metrics are measured once, after the last epoch. `train_kwargs` go to `train_fresh_mlp` (drop_rate, lr, ...).
    """
    if not splits:
        raise ValueError("splits is empty: give at least one name -> (inputs, labels) entry to measure errors on")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    errors: dict[str, list[float]] = {name: [] for name in splits}
    for seed in progress(seeds, desc=label, unit="seed", leave=False):
        model, _ = train_fresh_mlp(train, None, hidden=hidden, n_classes=n_classes, epochs=epochs, seed=seed,
                                   eval_every=epochs, **train_kwargs)
        for name, accuracy in accuracies(model, splits).items():
            errors[name].append(1.0 - accuracy)
    return {name: np.asarray(values) for name, values in errors.items()}


def mean_std(values: Sequence[float], *, scale: float = 100.0, digits: int = 2) -> str:
    """Format repeated measurements as 'mean ± std' (population std), multiplied by `scale` (100: percent)."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {array.shape}")
    return f"{scale * array.mean():.{digits}f} ± {scale * array.std():.{digits}f}"


def plot_bands(
    settings: Sequence[float],
    runs: Mapping[str, Any],
    *,
    ax: Axes | None = None,
    xlabel: str,
    ylabel: str,
    log_x: bool = False,
    percent: bool = True,
) -> Axes:
    """Plot each entry of `runs`, an array (seeds, settings), as its mean against `settings` with a ±1 std band."""
    if not runs:
        raise ValueError("runs is empty: give at least one label -> (seeds, settings) array")
    settings = np.asarray(settings, dtype=float)
    if settings.ndim != 1 or settings.size == 0:
        raise ValueError(f"settings must be a non-empty 1-D sequence, got shape {settings.shape}")
    if log_x and settings.min() <= 0:
        raise ValueError(f"settings must be positive for a log axis, got {settings.min()}")
    if ax is None:
        _, ax = plt.subplots()
    for i, (label, values) in enumerate(runs.items()):
        curves = np.asarray(values, dtype=float)
        if curves.ndim == 1:
            curves = curves[np.newaxis, :]
        if curves.ndim != 2 or curves.shape[1] != settings.size:
            raise ValueError(f"{label!r}: expected an array (seeds, {settings.size}), got shape {curves.shape}")
        color = PALETTE[i % len(PALETTE)]
        mean, std = curves.mean(axis=0), curves.std(axis=0)
        ax.plot(settings, mean, marker="o", color=color, label=label)
        if len(curves) > 1:
            ax.fill_between(settings, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
    if log_x:
        ax.set_xscale("log")
        ax.set_xticks(settings, labels=[f"{s:g}" for s in settings])
        ax.minorticks_off()
    if percent:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax
