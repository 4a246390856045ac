"""The book's NumPy reference dropout layer: inverted dropout, forward and backward, train and eval modes."""

from __future__ import annotations

from numbers import Real

import numpy as np


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


def _check_float_array(x: np.ndarray, name: str) -> np.ndarray:
    """Return `x` if it is a floating-point NumPy array; raise a clear error otherwise."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must have a floating-point dtype, got {x.dtype}")
    return x


class Dropout:
    """Inverted dropout: in training, zero each element with probability `rate` and scale the rest by 1/(1 - rate).

    In evaluation mode the layer is the identity. `rate` is the DROP probability (PyTorch's `p`, Keras's `rate`),
    not the keep probability of Srivastava et al. A rate of 1 is rejected. The output keeps the input's dtype.
    """

    def __init__(self, rate: float, *, seed: int | np.random.Generator | None = None) -> None:
        self.rate = check_rate(rate)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.training = True
        self._scaled_mask: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Dropout(rate={self.rate}, training={self.training})"

    def train(self, mode: bool = True) -> Dropout:
        """Switch to training mode (or to evaluation mode with `mode=False`); return the layer."""
        self.training = bool(mode)
        return self

    def eval(self) -> Dropout:
        """Switch to evaluation mode, where the layer is the identity; return the layer."""
        return self.train(False)

    @property
    def keep_prob(self) -> float:
        """The probability that an element is kept, 1 - rate."""
        return 1.0 - self.rate

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Apply dropout to `x`; `mask` (boolean, True = keep, x's shape) replaces the random draw if given."""
        _check_float_array(x, "x")
        if not self.training or self.rate == 0.0:
            self._scaled_mask = None
            return x
        if mask is None:
            mask = self.rng.random(x.shape) >= self.rate
        elif not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != x.shape:
            raise ValueError(f"mask must be a boolean array of the input's shape {x.shape}")
        self._scaled_mask = mask.astype(x.dtype) * x.dtype.type(1.0 / self.keep_prob)
        return x * self._scaled_mask

    __call__ = forward

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Return the gradient with respect to the last forward call's input: the same mask and scale."""
        _check_float_array(grad_out, "grad_out")
        if not self.training or self.rate == 0.0:
            return grad_out
        if self._scaled_mask is None:
            raise RuntimeError("backward() called before forward() in training mode")
        if grad_out.shape != self._scaled_mask.shape:
            raise ValueError(f"grad_out has shape {grad_out.shape}, the last forward input had {self._scaled_mask.shape}")
        return grad_out * self._scaled_mask
