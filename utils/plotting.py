"""The book's figure style and plot helpers: training curves, runs side by side, bands over seeds, digits, networks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

# Okabe & Ito's palette: distinguishable with every common form of colour blindness.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)

BOOK_STYLE: dict[str, Any] = {
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.constrained_layout.use": True,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 2.0,
    "image.cmap": "gray_r",
}


def use_book_style() -> None:
    """Apply the book's figure style to every later matplotlib figure.

    Chapter: setup_check
    """
    mpl.rcParams.update(BOOK_STYLE)


def _history_dict(history: Any) -> Mapping[str, Sequence[float]]:
    """Return the metric dict of a Keras ``History`` or of a plain mapping of metric name to values."""
    values = getattr(history, "history", history)
    if not isinstance(values, Mapping):
        raise TypeError("history must be a mapping of metric name to values or a Keras History, "
                        f"got {type(history).__name__}")
    return values


def _as_curves(name: str, values: Any) -> np.ndarray:
    """Return `values` as a float array of shape (runs, epochs); one run is a 1-D sequence."""
    curves = np.asarray(values, dtype=float)
    if curves.ndim == 1:
        curves = curves[np.newaxis, :]
    if curves.ndim != 2 or curves.shape[1] == 0:
        raise ValueError(f"{name!r}: expected a non-empty 1-D sequence or a 2-D (runs, epochs) array, "
                         f"got shape {curves.shape}")
    return curves


def plot_history(history: Any, metrics: Sequence[str] = ("loss", "accuracy"), *, title: str | None = None) -> Figure:
    """Plot training against validation curves per epoch, one panel per metric.

    Chapter: overfitting
    """
    values = _history_dict(history)
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not metrics:
        raise ValueError("metrics must name at least one metric")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.8 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        if metric not in values:
            plt.close(fig)
            raise KeyError(f"metric {metric!r} is not in the history; it has {sorted(values)}")
        series = {"training": values[metric]}
        if f"val_{metric}" in values:
            series["validation"] = values[f"val_{metric}"]
        plot_runs(series, ax=ax, ylabel=metric)
    if title:
        fig.suptitle(title)
    return fig


def plot_runs(
    runs: Mapping[str, Any],
    *,
    ax: Axes | None = None,
    xlabel: str = "epoch",
    ylabel: str = "",
    title: str | None = None,
) -> Axes:
    """Plot several runs on one axis; a 2-D (seeds, epochs) entry is drawn as its mean with a ±1 sd band.

    The band is one sample standard deviation over the seeds (ddof=1).

    Chapters: overfitting, numpy_dropout, keras_dropout, tutorials_offline
    """
    if not runs:
        raise ValueError("runs is empty: give at least one label -> values entry")
    if ax is None:
        _, ax = plt.subplots()
    for color, (label, values) in zip(_cycle(len(runs)), runs.items(), strict=True):
        curves = _as_curves(label, values)
        epochs = np.arange(1, curves.shape[1] + 1)
        mean = curves.mean(axis=0)
        ax.plot(epochs, mean, color=color, label=label)
        if len(curves) > 1:
            std = curves.std(axis=0, ddof=1)
            ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


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
    """Plot each entry of `runs`, an array (seeds, settings), as its mean against `settings` with a ±1 sd band.

    The band is one sample standard deviation over the seeds (ddof=1), as every ± in the book; with a single seed
    there is no band.

    Chapters: paper_rate, paper_data_size
    """
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
        mean = curves.mean(axis=0)
        std = curves.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros_like(mean)
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


def _cycle(n: int) -> list[str]:
    """Return `n` palette colours, repeating the palette when more are asked for."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def show_images(
    images: np.ndarray,
    labels: Sequence[Any] | None = None,
    *,
    image_shape: tuple[int, int] | None = None,
    ncols: int = 10,
) -> Figure:
    """Show images (n, h, w), or flat rows reshaped to `image_shape`, in a grid with optional titles.

    Chapter: setup_check
    """
    images = np.asarray(images)
    if image_shape is not None:
        if images.ndim != 2 or images.shape[1] != image_shape[0] * image_shape[1]:
            raise ValueError(f"cannot reshape images of shape {images.shape} to rows of {image_shape}")
        images = images.reshape(len(images), *image_shape)
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(f"expected a non-empty stack of 2-D images (n, h, w), got shape {images.shape}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"got {len(labels)} labels for {len(images)} images")
    if ncols < 1:
        raise ValueError(f"ncols must be at least 1, got {ncols}")
    ncols = min(ncols, len(images))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.25 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(images[i], cmap="gray_r")
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=10)
    return fig


def network_masks(layer_sizes: Sequence[int], drop_rate: float, seed: int) -> list[np.ndarray]:
    """Draw which units are kept (True) in each layer; the output layer always keeps every unit.

    Chapters: intro, ensemble
    """
    if len(layer_sizes) < 2 or any(int(n) != n or n < 1 for n in layer_sizes):
        raise ValueError(f"layer_sizes needs at least two positive integer sizes, got {list(layer_sizes)}")
    if not 0.0 <= drop_rate < 1.0:
        raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
    rng = np.random.default_rng(seed)
    masks = [rng.random(int(n)) >= drop_rate for n in layer_sizes[:-1]]
    for mask in masks:  # a layer with every unit dropped would cut the network in two
        if not mask.any():
            mask[rng.integers(len(mask))] = True
    return masks + [np.ones(int(layer_sizes[-1]), dtype=bool)]


def draw_network(
    layer_sizes: Sequence[int],
    kept: Sequence[np.ndarray] | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Draw a fully connected network; units not in `kept` are crossed out and lose their connections.

    Chapters: intro, ensemble
    """
    if kept is None:
        kept = [np.ones(int(n), dtype=bool) for n in layer_sizes]
    if len(kept) != len(layer_sizes) or any(len(k) != n for k, n in zip(kept, layer_sizes, strict=True)):
        raise ValueError("kept must hold one boolean mask per layer, each as long as its layer")
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3.2))
    tallest = max(layer_sizes)
    positions = [
        [(x, (tallest - n) / 2 + i) for i in range(n)] for x, n in enumerate(layer_sizes)
    ]
    for layer in range(len(layer_sizes) - 1):
        for a, (xa, ya) in enumerate(positions[layer]):
            for b, (xb, yb) in enumerate(positions[layer + 1]):
                if kept[layer][a] and kept[layer + 1][b]:
                    ax.plot([xa, xb], [ya, yb], color="0.45", linewidth=0.8, zorder=1)
    for layer, units in enumerate(positions):
        for unit, (x, y) in enumerate(units):
            on = bool(kept[layer][unit])
            ax.scatter(x, y, s=320, zorder=2, facecolor=PALETTE[0] if on else "white",
                       edgecolor=PALETTE[0] if on else "0.6", linewidth=1.5)
            if not on:
                ax.scatter(x, y, s=160, marker="x", color=PALETTE[3], linewidth=2.0, zorder=3)
    ax.set_xlim(-0.5, len(layer_sizes) - 0.5)
    ax.set_ylim(-0.8, tallest - 0.2)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax
