"""Argument checks shared by the utils modules: plain Python and NumPy, no framework imported."""

from __future__ import annotations

from numbers import Integral, Real

MAX_SEED = 2**32 - 1  # the largest seed NumPy's legacy RandomState (used by scikit-learn) accepts


def check_count(value: int, name: str, *, minimum: int = 1) -> int:
    """Return `value` as an int if it is an integer >= `minimum`; raise a clear error otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_rate(rate: float) -> float:
    """Return `rate` as a float if it is a valid drop rate, 0 <= rate < 1; raise a clear error otherwise."""
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
    """Return `seed` as an int if it is an integer in [0, 2**32 - 1]; raise a clear error otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}: {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    return int(seed)
