"""Dropout that keeps no mask for the backward pass: it keeps the random streams' state and draws the mask again.

The reference layer `utils.dropout.Dropout` stores a boolean mask, one byte per element, between forward and
backward. `SeededDropout` stores instead the state of its N_STREAMS bit generators as they were just before the
forward draw: a few hundred bytes, whatever the input's size. Its backward pass restores that state on copies of the
generators and runs the reference kernel, `utils.dropout.dropout_kernel`, on the upstream gradient: the kernel draws
the same random bytes, so it builds the same mask, and it scales the gradient exactly as the reference backward does. The
gradient is therefore bit-identical to the reference layer's for the same seed; the price is a second draw.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np

from utils.dropout import Dropout, dropout_kernel

StreamStates = list[dict]


def generator_state_nbytes(states: StreamStates) -> int:
    """Bytes that a list of bit-generator states takes when serialised with pickle (what a checkpoint would hold)."""
    if not isinstance(states, list) or not all(isinstance(state, dict) for state in states):
        raise TypeError("states must be a list of bit-generator state dicts (BitGenerator.state)")
    return len(pickle.dumps(states, protocol=pickle.HIGHEST_PROTOCOL))


class SeededDropout(Dropout):
    """The reference Dropout layer, but backward redraws the mask from the saved generator state instead of storing it.

    Forward draws exactly what `Dropout` draws for the same seed and returns the same output. Between forward and
    backward the layer holds only the streams' states (`saved_nbytes`), not a mask, so its `mask` property is None
    after a seeded forward; `replay_mask()` rebuilds the mask when you want to look at it. A mask given to
    `forward(x, mask=...)` cannot be redrawn from a seed, so that call falls back to the reference behaviour and
    stores a copy of it.
    """

    def __init__(self, rate: float, *, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(rate, seed=seed)
        self._states: StreamStates | None = None
        self._shape: tuple[int, ...] | None = None
        self._replay_streams = [copy.deepcopy(stream) for stream in self.streams]  # reused by every replay

    def __repr__(self) -> str:
        return f"SeededDropout(rate={self.rate}, training={self.training})"

    @property
    def saved_nbytes(self) -> int:
        """Bytes held for the backward pass: the serialised stream states after a seeded forward, else the mask's."""
        if self._states is not None:
            return generator_state_nbytes(self._states)
        return 0 if self.mask is None else int(self.mask.nbytes)

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Apply dropout to `x` as the reference layer does, keeping the generator state instead of the mask."""
        if mask is not None or not self.training or self.rate == 0.0:
            self._states = self._shape = None
            return super().forward(x, mask)
        states = [stream.state for stream in self.streams]  # before the draw: what backward must replay
        out, _ = dropout_kernel(x, self.rate, self.streams)  # checks x; the mask is dropped right away
        self._states, self._shape, self._dtype, self._mask = states, x.shape, x.dtype, None
        return out

    __call__ = forward

    def _replayed_streams(self) -> list[np.random.BitGenerator]:
        """The replay generators, set to the state the streams had before the last seeded forward draw."""
        for stream, state in zip(self._replay_streams, self._states):
            stream.state = state
        return self._replay_streams

    def replay_mask(self) -> np.ndarray:
        """Return the boolean mask (True = kept) of the last seeded forward call, drawn again from the saved state."""
        if self._states is None:
            raise RuntimeError("replay_mask() needs a training-mode forward() call without a given mask first")
        _, keep = dropout_kernel(np.zeros(self._shape, dtype=np.float32), self.rate, self._replayed_streams())
        return keep

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Return the gradient with respect to the last forward input, redrawing that call's mask from its seed."""
        if self._states is None or not self.training:
            return super().backward(grad_out)  # a stored mask, or evaluation mode: the reference behaviour
        if not isinstance(grad_out, np.ndarray):
            raise TypeError(f"grad_out must be a NumPy array, got {type(grad_out).__name__}")
        if grad_out.shape != self._shape:
            raise ValueError(f"grad_out has shape {grad_out.shape}, the last forward input had {self._shape}")
        if grad_out.dtype != self._dtype:
            raise TypeError(f"grad_out has dtype {grad_out.dtype}, the last forward input had {self._dtype}; "
                            "pass a gradient of the output's dtype")
        grad_in, _ = dropout_kernel(grad_out, self.rate, self._replayed_streams())
        return grad_in
