"""Dropout as an ensemble: every sub-network enumerated, exact and Monte-Carlo averages, and the closed forms.

It also reads the stored Fig. 11 analogue (sweep `fig11`): Monte-Carlo averaging against weight scaling over seeds.

Conventions: a *mask* row holds one boolean (or expected value) per droppable unit, True = kept. Functions that
enumerate or sample masks take the retention probability q = 1 - p (``keep_prob``; Srivastava et al. call it p);
functions that model a dropout layer take the book's drop ``rate`` p. Class probabilities of sub-networks are stacked
on axis 0, with the classes on the last axis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Real

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from torch import nn

from utils.checks import check_count, check_probs, check_rate
from utils.plotting import PALETTE
from utils.stats import PairedDifference, paired_difference

MAX_ENUMERATED_UNITS = 24  # 2**24 masks of 24 booleans is 400 MB: enumeration stops being sensible here

LogProbsFn = Callable[[np.ndarray], np.ndarray]


# --- argument checks -------------------------------------------------------------------


def _keep_probs(keep_prob: float | Sequence[float] | np.ndarray, n_units: int) -> np.ndarray:
    """Return one keep probability per unit, each in (0, 1]; a scalar applies to every unit."""
    if isinstance(keep_prob, bool) or (np.ndim(keep_prob) == 0 and not isinstance(keep_prob, Real)):
        raise TypeError(f"keep_prob must be a real number or one per unit, got {keep_prob!r}")
    probs = np.asarray(keep_prob, dtype=float)
    if probs.ndim == 0:
        probs = np.full(n_units, float(probs))
    if probs.shape != (n_units,):
        raise ValueError(f"keep_prob must be a scalar or hold {n_units} values, got shape {probs.shape}")
    if not np.all((probs > 0) & (probs <= 1)):
        raise ValueError(f"keep probabilities must lie in (0, 1] (the KEEP probability, 1 - rate), got {probs}")
    return probs


def _check_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    """Return mixture weights (uniform when None) after checking they are n non-negative numbers summing to 1."""
    if weights is None:
        return np.full(n, 1.0 / n)
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (n,):
        raise ValueError(f"weights must hold one value per sub-network ({n}), got shape {weights.shape}")
    if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-9):
        raise ValueError(f"weights must be non-negative and sum to 1, got sum {weights.sum()}")
    return weights


# --- masks -----------------------------------------------------------------------------


def enumerate_masks(n_units: int, keep_prob: float | Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every one of the 2**n_units keep-masks (rows, True = kept) and its probability under independent keeping.

    Chapter: ensemble
    """
    n_units = check_count(n_units, "n_units")
    if n_units > MAX_ENUMERATED_UNITS:
        raise ValueError(f"2**{n_units} masks is too many to enumerate (at most 2**{MAX_ENUMERATED_UNITS})")
    keep = _keep_probs(keep_prob, n_units)
    codes = np.arange(2**n_units)[:, None]
    masks = (codes >> np.arange(n_units)) & 1 == 1  # row i holds the binary digits of i
    probs = np.where(masks, keep, 1.0 - keep).prod(axis=1)
    return masks, probs


def sample_masks(n_samples: int, n_units: int, keep_prob: float | Sequence[float] | np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Draw n_samples independent keep-masks (rows, True = kept), unit j kept with probability keep_prob[j].

    Chapter: ensemble
    """
    n_samples, n_units = check_count(n_samples, "n_samples"), check_count(n_units, "n_units")
    keep = _keep_probs(keep_prob, n_units)
    return rng.random((n_samples, n_units)) < keep


# --- averages over sub-networks --------------------------------------------------------


def arithmetic_mean(probs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted arithmetic mean over axis 0 of sub-networks' class probabilities (uniform weights by default).

    Chapter: ensemble
    """
    probs = check_probs(probs)
    return np.tensordot(_check_weights(weights, len(probs)), probs, axes=1)


def nwgm(probs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Normalised weighted geometric mean over axis 0 of sub-networks' class probabilities (Baldi & Sadowski).

    Chapter: ensemble
    """
    probs = check_probs(probs)
    weights = _check_weights(weights, len(probs))
    with np.errstate(divide="ignore"):  # a zero probability gives log 0 = -inf, and a zero geometric mean
        log_geometric = np.tensordot(weights, np.log(probs), axes=1)
    return _softmax(log_geometric)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, computed stably."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def ensemble_means(log_probs_fn: LogProbsFn, masks: np.ndarray, weights: np.ndarray | None = None, *,
                   batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Exact (arithmetic mean, NWGM) of the sub-networks `masks`, whose log-probabilities come from log_probs_fn.

    ``log_probs_fn(batch)`` maps a (b, n_units) block of masks to (b, ..., n_classes) log class probabilities;
    the masks are fed in blocks of batch_size so that the 2**n sub-networks never sit in memory at once.
    Chapter: ensemble
    """
    masks = np.asarray(masks)
    if masks.ndim != 2 or len(masks) == 0:
        raise ValueError(f"masks must be a non-empty 2-D array (sub-networks, units), got shape {masks.shape}")
    weights = _check_weights(weights, len(masks))
    batch_size = check_count(batch_size, "batch_size")
    total_probs, total_logs = 0.0, 0.0
    for start in range(0, len(masks), batch_size):
        block = slice(start, start + batch_size)
        log_probs = np.asarray(log_probs_fn(masks[block]), dtype=float)
        if log_probs.shape[0] != len(masks[block]):
            raise ValueError(f"log_probs_fn returned {log_probs.shape[0]} rows for {len(masks[block])} masks")
        total_probs = total_probs + np.tensordot(weights[block], np.exp(log_probs), axes=1)
        total_logs = total_logs + np.tensordot(weights[block], log_probs, axes=1)
    return total_probs, _softmax(total_logs)


def monte_carlo_means(log_probs_fn: LogProbsFn, n_units: int, keep_prob: float | Sequence[float] | np.ndarray,
                      ks: Sequence[int], rng: np.random.Generator, *,
                      batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Monte-Carlo (arithmetic mean, NWGM) of the first k of max(ks) sampled sub-networks, stacked over k in ks.

    The samples are nested: the estimate for k = 10 uses the first 10 of the sub-networks that k = 100 uses.
    Chapter: ensemble
    """
    ks = [check_count(k, "every k") for k in ks]
    if not ks:
        raise ValueError("ks must name at least one sample count")
    masks = sample_masks(max(ks), n_units, keep_prob, rng)
    batch_size = check_count(batch_size, "batch_size")
    log_probs = np.concatenate([np.asarray(log_probs_fn(masks[s:s + batch_size]), dtype=float)
                                for s in range(0, len(masks), batch_size)])
    running_probs = np.cumsum(np.exp(log_probs), axis=0)  # row k - 1: sum over the first k sub-networks
    running_logs = np.cumsum(log_probs, axis=0)
    arithmetic = np.stack([running_probs[k - 1] / k for k in ks])
    geometric = np.stack([_softmax(running_logs[k - 1] / k) for k in ks])
    return arithmetic, geometric


def settles_from(ks: Sequence[int], holds: Sequence[bool]) -> int | None:
    """The smallest k from which `holds` is true at every larger k too, or None when it fails at the last k.

    `holds[i]` says whether a condition holds with ks[i] samples; a condition that flickers on and off counts only
    from the last time it comes on.
    Chapter: ensemble
    """
    ks = [check_count(k, "every k") for k in ks]
    holds = [bool(flag) for flag in holds]
    if not ks or len(ks) != len(holds):
        raise ValueError(f"need one flag per k and at least one k, got {len(ks)} ks and {len(holds)} flags")
    start = len(ks)
    while start > 0 and holds[start - 1]:
        start -= 1
    return ks[start] if start < len(ks) else None


# --- the stored Fig. 11 analogue: Monte-Carlo averaging against weight scaling over seeds ----------------------------


def _check_mc_runs(runs: pd.DataFrame, ks: Sequence[int]) -> list[int]:
    """The sample counts `ks`, checked against the columns of a stored fig11 table with at least two seeds."""
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"runs must be a DataFrame (the stored fig11 table), got {type(runs).__name__}")
    ks = [check_count(k, "every k") for k in ks]
    if not ks:
        raise ValueError("ks must name at least one sample count")
    missing = {"scaling_error", *(f"mc_error_{k}" for k in ks)} - set(runs.columns)
    if missing:
        raise ValueError(f"runs lacks the column(s) {sorted(missing)}: pass the stored fig11 table")
    if len(runs) < 2:
        raise ValueError(f"a comparison over seeds needs at least two runs, got {len(runs)}")
    return ks


def mc_versus_scaling(runs: pd.DataFrame, ks: Sequence[int], *, level: float = 0.95) -> dict[int, PairedDifference]:
    """For each k, the paired difference over seeds of test errors, Monte-Carlo average of k minus weight scaling.

    `runs` is the stored fig11 table, one row per seed, with the columns scaling_error and mc_error_<k>. A negative
    difference means Monte-Carlo averaging made fewer errors.
    Chapter: ensemble
    """
    ks = _check_mc_runs(runs, ks)
    return {k: paired_difference(runs[f"mc_error_{k}"], runs["scaling_error"], level=level) for k in ks}


def _mean_interval(values: pd.Series, level: float) -> tuple[float, float, float]:
    """The mean of `values` and its t-interval at `level`: the paired interval of the values against 0."""
    result = paired_difference(values, np.zeros(len(values)), level=level)
    return result.mean, result.low, result.high


def plot_mc_against_scaling(runs: pd.DataFrame, ks: Sequence[int], *, level: float = 0.95) -> Figure:
    """Fig. 11 from stored runs: test error against k (top) and Monte-Carlo minus weight scaling (bottom).

    Top: the mean test error over seeds of Monte-Carlo averaging with k sub-networks, and of weight scaling as a
    horizontal line, each with the t-interval of its mean at `level` as a band. Bottom: the paired difference
    MC(k) - weight scaling over the same seeds, in percentage points, with its interval, and the line at 0.
    Chapter: ensemble
    """
    ks = _check_mc_runs(runs, ks)
    differences = mc_versus_scaling(runs, ks, level=level)
    mc = np.array([_mean_interval(runs[f"mc_error_{k}"], level) for k in ks]) * 100
    scaling_mean, scaling_low, scaling_high = np.array(_mean_interval(runs["scaling_error"], level)) * 100
    fig, (error_ax, diff_ax) = plt.subplots(2, 1, figsize=(7, 7.6), sharex=True,
                                            gridspec_kw={"height_ratios": (3, 2)})
    error_ax.plot(ks, mc[:, 0], marker="o", color=PALETTE[0], label="Monte-Carlo average of k sub-networks")
    error_ax.fill_between(ks, mc[:, 1], mc[:, 2], color=PALETTE[0], alpha=0.2, linewidth=0)
    error_ax.axhline(scaling_mean, color="black", linestyle="--", label="weight scaling (one pass)")
    error_ax.axhspan(scaling_low, scaling_high, color="0.5", alpha=0.2, linewidth=0)
    error_ax.set(ylabel="test error")
    error_ax.yaxis.set_major_formatter(PercentFormatter(decimals=1))
    error_ax.legend(loc="upper right")
    diff = np.array([(d.mean, d.low, d.high) for d in differences.values()]) * 100
    diff_ax.axhline(0.0, color="black", linestyle="--", linewidth=1)
    diff_ax.errorbar(ks, diff[:, 0], yerr=(diff[:, 0] - diff[:, 1], diff[:, 2] - diff[:, 0]), marker="o",
                     color=PALETTE[1], capsize=4, label="Monte-Carlo minus weight scaling, paired over seeds")
    diff_ax.set(xscale="log", xlabel="sub-networks averaged, k", ylabel="difference (percentage points)")
    diff_ax.set_xticks(ks, [str(k) for k in ks])
    diff_ax.legend(loc="upper right")
    return fig


def largest_cdf_gap(a: np.ndarray, b: np.ndarray) -> float:
    """The largest vertical gap between the empirical CDFs of two samples (the Kolmogorov-Smirnov distance).

    Chapter: ensemble
    """
    a, b = np.sort(np.asarray(a, dtype=float).ravel()), np.sort(np.asarray(b, dtype=float).ravel())
    if a.size == 0 or b.size == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"need two non-empty samples of finite numbers, got sizes {a.size} and {b.size}")
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / a.size
    cdf_b = np.searchsorted(b, points, side="right") / b.size
    return float(np.abs(cdf_a - cdf_b).max())


# --- sub-networks of a PyTorch MLP -----------------------------------------------------


def droppable_units(model: nn.Sequential) -> int:
    """Number of units that the nn.Dropout layers of `model` can drop (the width feeding each of them).

    Chapter: ensemble
    """
    return sum(width for width, _ in _dropout_layers(model))


def _dropout_layers(model: nn.Sequential) -> list[tuple[int, float]]:
    """(width, drop rate) of each nn.Dropout layer in `model`, in order; raise on unsupported layers."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    linears = [layer for layer in model if isinstance(layer, nn.Linear)]
    if not linears:
        raise ValueError("model has no nn.Linear layer")
    found, width = [], linears[0].in_features
    for layer in model:
        if isinstance(layer, nn.Linear):
            width = layer.out_features
        elif isinstance(layer, nn.Dropout):
            found.append((width, float(layer.p)))
        elif not isinstance(layer, (nn.ReLU, nn.Identity)):
            raise TypeError(f"only Linear, ReLU, Dropout and Identity layers are supported, got {layer}")
    return found


def subnetwork_log_probs(model: nn.Sequential, x: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Log class probabilities, shape (masks, examples, classes), of the sub-networks of a Linear/ReLU/Dropout MLP.

    Row i of `masks` gives, for every unit at every nn.Dropout layer in order, 1 (kept) or 0 (dropped); kept units
    are scaled by 1/(1 - rate) as in training (inverted dropout). A row of keep probabilities, 1 - rate, gives the
    weight-scaled network, i.e. the model in eval mode. Computed in float64.
    Chapter: ensemble
    """
    layers = _dropout_layers(model)
    masks = np.asarray(masks, dtype=float)
    n_units = sum(width for width, _ in layers)
    if masks.ndim != 2 or masks.shape[1] != n_units:
        raise ValueError(f"masks must have shape (n, {n_units}) for this model, got {masks.shape}")
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (examples, features), got shape {x.shape}")
    h = x[None]  # (1, examples, features): broadcasts against the masks once the first one is applied
    offset = 0
    for layer in model:
        if isinstance(layer, nn.Linear):
            weight = layer.weight.detach().double().numpy()
            bias = layer.bias.detach().double().numpy()
            h = (h.reshape(-1, h.shape[-1]) @ weight.T).reshape(*h.shape[:-1], -1) + bias  # one GEMM
        elif isinstance(layer, nn.ReLU):
            h = np.maximum(h, 0.0)
        elif isinstance(layer, nn.Dropout):
            width = h.shape[-1]
            block = masks[:, offset:offset + width] / (1.0 - layer.p)
            h = h * block[:, None, :]
            offset += width
    logits = np.broadcast_to(h, (len(masks), *h.shape[1:]))
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# --- dropout as a regulariser: linear regression ---------------------------------------


def _regression_inputs(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Check and convert a design matrix, targets and (optionally) weights to float64."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 2 or y.shape != (len(x),):
        raise ValueError(f"need x of shape (n, d) and y of shape (n,), got {x.shape} and {y.shape}")
    if w is None:
        return x, y
    w = np.asarray(w, dtype=float)
    if w.shape != (x.shape[1],):
        raise ValueError(f"w must hold one weight per feature ({x.shape[1]}), got shape {w.shape}")
    return x, y, w


def dropout_linreg_loss(x: np.ndarray, y: np.ndarray, w: np.ndarray, rate: float, *, inverted: bool = True) -> float:
    """Expected squared error ||y - (M * x) w / s||^2 over input-dropout masks M, in closed form.

    Here s = 1 - rate when `inverted`, else 1. The result is a plain squared error plus the data-dependent penalty
    c * sum_j w_j^2 ||x_j||^2.
    Chapter: ensemble
    """
    x, y, w = _regression_inputs(x, y, w)
    keep = 1.0 - check_rate(rate)
    gamma_sq = (x**2).sum(axis=0)  # diag(X^T X)
    if inverted:
        return float(np.sum((y - x @ w) ** 2) + rate / keep * np.sum(gamma_sq * w**2))
    return float(np.sum((y - keep * (x @ w)) ** 2) + keep * rate * np.sum(gamma_sq * w**2))


def mc_dropout_linreg_loss(x: np.ndarray, y: np.ndarray, w: np.ndarray, rate: float, n_samples: int,
                           rng: np.random.Generator, *, inverted: bool = True,
                           batch_size: int = 1000) -> tuple[float, float]:
    """Monte-Carlo estimate of dropout_linreg_loss from n_samples masks: (mean, standard error of the mean).

    Chapter: ensemble
    """
    x, y, w = _regression_inputs(x, y, w)
    keep = 1.0 - check_rate(rate)
    n_samples = check_count(n_samples, "n_samples", minimum=2)
    batch_size = check_count(batch_size, "batch_size")
    scale = 1.0 / keep if inverted else 1.0
    losses = []
    for start in range(0, n_samples, batch_size):
        size = min(batch_size, n_samples - start)
        masks = rng.random((size, *x.shape)) < keep
        predictions = (masks * x) @ w * scale
        losses.append(((y - predictions) ** 2).sum(axis=1))
    losses = np.concatenate(losses)
    return float(losses.mean()), float(losses.std(ddof=1) / np.sqrt(n_samples))


def dropout_linreg_solution(x: np.ndarray, y: np.ndarray, rate: float) -> np.ndarray:
    """Weights minimising the inverted-dropout expected loss: ridge with penalty rate/(1 - rate) * ||x_j||^2 on w_j.

    Chapter: ensemble
    """
    x, y = _regression_inputs(x, y)
    keep = 1.0 - check_rate(rate)
    gram = x.T @ x
    return np.linalg.solve(gram + rate / keep * np.diag(np.diag(gram)), x.T @ y)
