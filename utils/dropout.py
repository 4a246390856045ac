"""The book's NumPy reference dropout layer, `Dropout`: inverted dropout, forward and backward, train and eval modes.

It is written to be read: the mask is one uniform draw per element, compared with the rate. `utils.fast_dropout`
holds a faster variant, `FastDropout`, that changes only how the mask is drawn.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from utils.checks import check_rate


def _check_float_array(x: np.ndarray, name: str) -> None:
    """Raise a clear error unless `x` is a floating-point NumPy array."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must have a floating-point dtype (float16, float32 or float64), got {x.dtype}")


def _check_mask(mask: object, shape: tuple[int, ...]) -> None:
    """Raise a clear error unless `mask` is a boolean NumPy array of `shape`."""
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != shape:
        got = f"{mask.dtype} array of shape {mask.shape}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise ValueError(f"mask must be a boolean array (True = keep) of the input's shape {shape}, got {got}")


def _make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Return `seed` if it is a Generator, else a new default Generator seeded with it (None: fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0):
        raise TypeError(f"seed must be None, a non-negative int or a numpy.random.Generator, got {seed!r}")
    return np.random.default_rng(seed)


def _apply_mask(x: np.ndarray, keep: np.ndarray, rate: float,
                out: np.ndarray | None = None) -> np.ndarray:
    """Return x * keep * (1/(1 - rate)) in x's dtype, written into `out` if given.

    Every NumPy layer of the book scales with this formula, forward and backward, so
    their outputs agree bit for bit for the same mask. The mask comes first: a dropped
    element is 0 even where x * scale would overflow.
    """
    out = np.multiply(x, keep, out=np.empty_like(x) if out is None else out)
    return np.multiply(out, x.dtype.type(1.0 / (1.0 - rate)), out=out)


class Dropout:
    """Inverted dropout: zero each element with probability `rate`, scale the rest.

    In training the kept elements are scaled by 1/(1 - rate); in evaluation mode,
    and at rate 0, the layer is the identity. `rate` is the DROP probability
    (PyTorch's `p`, Keras's `rate`); a rate of 1 is rejected. The output, and the
    gradient that backward returns, keep the input's dtype. The masks come from
    `self.rng`, made from `seed` (None, an int, or a numpy Generator used as it
    is). A subclass changes how the mask is drawn by overriding `draw_mask`.

    Chapter: numpy_dropout
    """

    def __init__(self, rate: float, *,
                 seed: int | np.random.Generator | None = None) -> None:
        self.rate = check_rate(rate)
        self.rng = _make_rng(seed)
        self.training = True
        self._mask: np.ndarray | None = None  # what backward applies
        # shape and dtype of the last training-mode input, for backward's checks
        self._input: tuple[tuple[int, ...], np.dtype] | None = None

    def train(self, mode: bool = True) -> Dropout:
        """Switch to training mode (`mode=False`: evaluation mode); return the layer."""
        self.training = bool(mode)
        return self

    def eval(self) -> Dropout:
        """Switch to evaluation mode, where the layer is the identity; return it."""
        return self.train(False)

    @property
    def mask(self) -> np.ndarray | None:
        """The boolean mask (True = kept) of the last training-mode forward, or None."""
        return self._mask

    # What the layer does: draw a mask, apply it forward, apply the same mask backward.

    def draw_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """A fresh boolean mask of `shape`: True (keep) with probability 1 - rate."""
        return np.asarray(self.rng.random(shape) >= self.rate)  # asarray: shape () too

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Apply dropout to `x`, with a given boolean `mask` (True = keep) if any."""
        self._check_forward(x, mask)
        if not self.training or self.rate == 0.0:  # evaluation mode: the identity
            self._mask = self._input = None
            return x
        if mask is None:
            out, self._mask = self._draw_and_apply(x)
        else:
            out, self._mask = _apply_mask(x, mask, self.rate), mask.copy()
        self._input = (x.shape, x.dtype)
        return out

    __call__ = forward

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Return the gradient for the last forward input: same mask, same scale."""
        self._check_backward(grad_out)
        if not self.training or self.rate == 0.0:
            return grad_out
        return self._apply_backward(grad_out)

    def _draw_and_apply(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Draw a mask for `x` and apply it: (output, what backward will apply).

        A separate method so that a subclass can do both steps at once (FastDropout),
        or keep something other than the mask (SeededDropout); the chapter on costs
        builds both.
        """
        mask = self.draw_mask(x.shape)
        return _apply_mask(x, mask, self.rate), mask

    def _apply_backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Return `grad_out` times the last forward call's mask and scale."""
        return _apply_mask(grad_out, self._mask, self.rate)

    # Conveniences: how the layer prints, and its keep probability.

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rate={self.rate}, training={self.training})"

    @property
    def keep_prob(self) -> float:
        """The probability that an element is kept, 1 - rate."""
        return 1.0 - self.rate

    # The argument checks: every wrong call gets an error that says what was wrong.

    def _check_forward(self, x: np.ndarray, mask: np.ndarray | None) -> None:
        """Raise a clear error unless `x` is a float array and `mask` is None or a boolean array of x's shape.

        In evaluation mode, or with rate 0, a given mask is checked too, though it is not applied.
        """
        _check_float_array(x, "x")
        if mask is not None:
            _check_mask(mask, x.shape)

    def _check_backward(self, grad_out: np.ndarray) -> None:
        """Raise a clear error unless `grad_out` is a float array matching the last training-mode forward input."""
        _check_float_array(grad_out, "grad_out")
        if not self.training or self.rate == 0.0:
            return  # the identity: any float gradient passes through
        if self._input is None:
            raise RuntimeError("backward() called before forward() in training mode")
        shape, dtype = self._input
        if grad_out.shape != shape:
            raise ValueError(f"grad_out has shape {grad_out.shape}, the last forward input had {shape}")
        if grad_out.dtype != dtype:
            raise TypeError(f"grad_out has dtype {grad_out.dtype}, the last forward input had {dtype}; "
                            "pass a gradient of the output's dtype")
