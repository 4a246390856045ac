"""Argument checks shared by the utils modules: plain Python and NumPy, no framework imported.

Each check returns the value in the form the caller works with (an int, a float, a list, an array), so that a public
function checks an argument once, at its entry, and passes the checked value on to its private helpers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np

MAX_SEED = 2**32 - 1  # the largest seed NumPy's legacy RandomState (used by scikit-learn) accepts


def check_count(value: int, name: str, *, minimum: int = 1) -> int:
    """Return `value` as an int if it is an integer >= `minimum`; raise a clear error otherwise.

    Chapters: numpy_dropout, overfitting, mc_dropout
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_sizes(sizes: Sequence[int], name: str, *, allow_empty: bool = False) -> list[int]:
    """Return `sizes` (layer widths, filter counts) as a list of ints >= 1; raise a clear error otherwise.

    An empty sequence is an error unless `allow_empty` (an MLP without hidden layers, for instance).
    Chapters: overfitting, keras_dropout, tutorials_offline
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"{name} must be a sequence of positive integers (a list or a tuple), "
                        f"got {type(sizes).__name__}: {sizes!r}")
    if not sizes and not allow_empty:
        raise ValueError(f"{name} must hold at least one positive integer, got {sizes!r}")
    return [check_count(size, f"every entry of {name}") for size in sizes]


def check_positive(value: float, name: str, *, allow_zero: bool = False) -> float:
    """Return `value` as a float if it is a finite real number > 0 (>= 0 with `allow_zero`); raise otherwise.

    Chapters: keras_dropout, inverted_scaling
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "at least 0" if allow_zero else "above 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}")
    return value


def check_rate(rate: float) -> float:
    """Return `rate` as a float if it is a valid drop rate, 0 <= rate < 1; raise a clear error otherwise.

    Chapter: numpy_dropout
    """
    if isinstance(rate, bool) or not isinstance(rate, Real):
        raise TypeError(f"the drop rate must be a real number, got {type(rate).__name__}: {rate!r}")
    rate = float(rate)
    if rate == 1.0:
        raise ValueError("a drop rate of 1 zeroes every unit and makes the inverted scale 1/(1 - rate) infinite; "
                         "use a rate below 1 (the rate is the probability of DROPPING a unit)")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"the drop rate must satisfy 0 <= rate < 1, got {rate}")
    return rate


def check_seed(seed: int) -> int:
    """Return `seed` as an int if it is an integer in [0, 2**32 - 1]; raise a clear error otherwise.

    Chapter: setup_check
    """
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}: {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    return int(seed)


def check_probs(probs: np.ndarray, *, ndim: int | None = None, atol: float = 1e-4) -> np.ndarray:
    """Return stacked class-probability vectors as a float64 array; raise a clear error if they are not.

    Axis 0 stacks the predictions (Monte-Carlo passes, sub-networks), the last axis holds at least two classes, and
    every vector is non-negative and sums to 1 within `atol`. `ndim` (when given) is the number of axes required.
    Chapters: ensemble, mc_dropout
    """
    probs = np.asarray(probs, dtype=np.float64)
    layout = "(predictions, ..., classes)" if ndim is None else f"{ndim}-D"
    if probs.ndim < 2 or (ndim is not None and probs.ndim != ndim):
        raise ValueError(f"probs must be a {layout} array of stacked probability vectors, got shape {probs.shape}")
    if 0 in probs.shape or probs.shape[-1] < 2:
        raise ValueError(f"probs must stack at least one prediction of at least two classes, got shape {probs.shape}")
    if not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.max() > 1:
        raise ValueError("probs must hold probabilities: finite numbers in [0, 1]")
    if not np.allclose(probs.sum(axis=-1), 1.0, rtol=0.0, atol=atol):
        raise ValueError(f"every probability vector must sum to 1 over the last axis (within {atol:g}); the largest "
                         f"gap is {np.abs(probs.sum(axis=-1) - 1.0).max():.3g}")
    return probs
