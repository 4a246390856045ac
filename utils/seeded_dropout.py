"""Dropout that keeps no mask for the backward pass: it keeps the random streams' state and draws the mask again.

`utils.fast_dropout.FastDropout` stores a boolean mask, one byte per element, between forward and backward.
`SeededDropout` stores instead the state of its N_STREAMS bit generators as they were just before the forward draw:
a few hundred bytes, whatever the input's size. Its backward pass restores that state on copies of the generators
and runs the fast kernel, `utils.fast_dropout.dropout_kernel`, on the upstream gradient: the kernel draws the same
random bytes, so it builds the same mask, and it scales the gradient exactly as the stored-mask backward does. The
gradient is therefore bit-identical to FastDropout's for the same seed; the price is a second draw.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np

from utils.fast_dropout import FastDropout, dropout_kernel, keep_mask

StreamStates = list[dict]


def generator_state_nbytes(states: StreamStates) -> int:
    """Bytes that a list of bit-generator states takes when serialised with pickle (what a checkpoint would hold).

    Chapter: costs
    """
    if not isinstance(states, list) or not all(isinstance(state, dict) for state in states):
        raise TypeError("states must be a list of bit-generator state dicts (BitGenerator.state)")
    return len(pickle.dumps(states, protocol=pickle.HIGHEST_PROTOCOL))


class SeededDropout(FastDropout):
    """FastDropout, but backward redraws the mask from the saved generator state instead of storing it.

    Forward draws exactly what `FastDropout` draws for the same seed and returns the same output. Between forward
    and backward the layer holds only the streams' states (`saved_nbytes`), not a mask, so its `mask` property is
    None after a seeded forward; `replay_mask()` rebuilds the mask when you want to look at it. A mask given to
    `forward(x, mask=...)` cannot be redrawn from a seed, so that call falls back to storing a copy of it.

    Chapter: costs
    """

    def __init__(self, rate: float, *, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(rate, seed=seed)
        self._states: StreamStates | None = None
        self._replay_streams = [copy.deepcopy(stream) for stream in self.streams]  # reused by every replay

    @property
    def saved_nbytes(self) -> int:
        """Bytes held for the backward pass: the serialised stream states after a seeded forward, else the mask's."""
        if self._states is not None:
            return generator_state_nbytes(self._states)
        return 0 if self.mask is None else int(self.mask.nbytes)

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Apply dropout to `x` as FastDropout does, keeping the generator state instead of a drawn mask."""
        self._states = None  # set again by _draw_and_apply when this call draws a mask
        return super().forward(x, mask)

    __call__ = forward

    def _draw_and_apply(self, x: np.ndarray) -> tuple[np.ndarray, None]:
        """Save the streams' state, then draw and apply the mask as FastDropout does."""
        # the state before the draw: what backward must replay
        states = [stream.state for stream in self.streams]
        out, _ = super()._draw_and_apply(x)  # the mask is dropped right away
        self._states = states
        return out, None

    def _apply_backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Redraw the last forward mask from the saved state and apply it to grad_out."""
        if self._states is None:  # a given mask was stored: apply it
            return super()._apply_backward(grad_out)
        grad_in, _ = dropout_kernel(grad_out, self.rate, self._replayed_streams())
        return grad_in

    def _replayed_streams(self) -> list[np.random.BitGenerator]:
        """The replay generators, set to the state the streams had before the last seeded forward draw."""
        for stream, state in zip(self._replay_streams, self._states):
            stream.state = state
        return self._replay_streams

    def replay_mask(self) -> np.ndarray:
        """Return the boolean mask (True = kept) of the last seeded forward call, drawn again from the saved state."""
        if self._states is None:
            raise RuntimeError("replay_mask() needs a training-mode forward() call without a given mask first")
        return keep_mask(self._input[0], self.rate, self._replayed_streams())
