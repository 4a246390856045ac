"""Argument checks shared by the utils modules."""

from __future__ import annotations

from numbers import Integral


def check_count(value: int, name: str, *, minimum: int = 1) -> int:
    """Return `value` as an int if it is an integer >= `minimum`; raise a clear error otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)
