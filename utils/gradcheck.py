"""Gradient checks: numerical gradients by central differences, and the relative error against an analytic gradient.

The numerical gradient nudges one entry of `x` at a time by +h and -h, in place, and restores it afterwards, so
the function under test must read `x` afresh on every call. Checks are run in float64: in float32 the rounding error
of each function value, divided by h, swamps the derivative, so the functions here refuse other dtypes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from numbers import Real

import numpy as np

DEFAULT_STEP = 1e-5
ERROR_FLOOR = 1e-8  # denominators below this count as this, so that two tiny gradients do not look far apart


def _check_float64(x: object, name: str) -> np.ndarray:
    """Return `x` if it is a float64 NumPy array; raise a clear error otherwise."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype != np.float64:
        raise TypeError(f"{name} must be float64 for a gradient check, got {x.dtype} "
                        "(lower precision makes finite differences too noisy)")
    return x


def _check_step(h: float) -> float:
    """Return `h` as a float if it is a positive, finite step; raise a clear error otherwise."""
    if isinstance(h, bool) or not isinstance(h, Real):
        raise TypeError(f"the step h must be a real number, got {type(h).__name__}: {h!r}")
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"the step h must be positive and finite, got {h}")
    return float(h)


def _nudged(f: Callable[[np.ndarray], object], x: np.ndarray, h: float,
            read: Callable[[object], object]) -> Iterator[tuple[tuple[int, ...], object, object]]:
    """For each entry of `x`: (index, read(f(x + h)), read(f(x - h))) with only that entry nudged; x is restored."""
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + h
        plus = read(f(x))
        x[index] = saved - h
        minus = read(f(x))
        x[index] = saved
        yield index, plus, minus


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, *, h: float = DEFAULT_STEP) -> np.ndarray:
    """Return the gradient of the scalar function `f` at `x` by central differences (f(x+h) - f(x-h)) / 2h.

    Chapter: numpy_dropout
    """
    if not callable(f):
        raise TypeError(f"f must be a callable taking x, got {type(f).__name__}")
    _check_float64(x, "x")
    h = _check_step(h)
    grad = np.zeros_like(x)
    for index, plus, minus in _nudged(f, x, h, lambda value: value):
        if np.ndim(plus) != 0 or np.ndim(minus) != 0:
            raise ValueError(f"f must return a scalar, got an array of shape {np.shape(plus)}; "
                             "for an array-valued function use numerical_gradient_array")
        grad[index] = (float(plus) - float(minus)) / (2.0 * h)
    return grad


def numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, grad_out: np.ndarray, *,
                             h: float = DEFAULT_STEP) -> np.ndarray:
    """Return the gradient at `x` of sum(f(x) * grad_out), for an array-valued `f`, by central differences.

    This is what a layer's backward(grad_out) must return. The difference f(x+h) - f(x-h) is taken element by
    element before it is weighted by grad_out, which keeps the rounding error small.
    Chapter: numpy_dropout
    """
    if not callable(f):
        raise TypeError(f"f must be a callable taking x, got {type(f).__name__}")
    _check_float64(x, "x")
    _check_float64(grad_out, "grad_out")
    h = _check_step(h)
    grad = np.zeros_like(x)
    # np.array copies: f may return a view of x or reuse its output buffer
    for index, plus, minus in _nudged(f, x, h, lambda value: np.array(value, dtype=np.float64)):
        if plus.shape != grad_out.shape:
            raise ValueError(f"f(x) has shape {plus.shape} but grad_out has shape {grad_out.shape}; they must match")
        grad[index] = np.sum((plus - minus) * grad_out) / (2.0 * h)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Return the largest elementwise |a - n| / max(|a| + |n|, ERROR_FLOOR): about 1e-8 or less means they agree.

    Chapter: numpy_dropout
    """
    a, n = np.asarray(analytic), np.asarray(numeric)
    if a.shape != n.shape:
        raise ValueError(f"the gradients have different shapes: {a.shape} and {n.shape}")
    if a.size == 0:
        raise ValueError("the gradients are empty: there is nothing to compare")
    if not (np.issubdtype(a.dtype, np.number) and np.issubdtype(n.dtype, np.number)):
        raise TypeError(f"the gradients must be numeric arrays, got {a.dtype} and {n.dtype}")
    a, n = a.astype(np.float64), n.astype(np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(n))):
        raise ValueError("the gradients contain NaN or infinite values")
    return float(np.max(np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), ERROR_FLOOR)))
