"""The book's NumPy reference dropout layer: inverted dropout, forward and backward, train and eval modes.

How a mask is drawn (the chapter "Dropout from scratch in NumPy" builds this up step by step):

- Each element conceptually gets one uniform 32-bit word u and is kept when u >= `keep_threshold(rate)`, which
  happens with probability 1 - rate to within 2**-32. The words are drawn lazily (`draw_keep`): first one random
  byte per element, the word's top 8 bits, from a NumPy bit generator's `random_raw`. A byte above the threshold's
  top byte keeps the element and one below drops it, whatever the other 24 bits are; only on a tie (probability
  1/256) is a second word drawn for the lower 24 bits. That is the same decision as comparing whole 32-bit words,
  at about 8.1 random bits per element instead of 32. No float uniforms and no float64 temporaries are made.
- The work is cut into chunks of CHUNK elements, small enough that a chunk's random bytes, mask, input and output
  stay in the CPU's caches between the steps that touch them, and large enough that Python's per-call overhead is
  small beside the work.
- There are N_STREAMS random streams: the layer's own generator and N_STREAMS - 1 children spawned from it. Chunk k
  always takes its bytes from stream k % N_STREAMS, and each stream fills its chunks in order, so the mask depends
  on the seed and the input's size only, never on how many threads do the work. NumPy releases the GIL while it
  fills and compares arrays, so the streams can run in parallel threads.
- The mask kept for backward is boolean: one byte per element, whatever the input's dtype.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral

import numpy as np

from utils.checks import check_rate

CHUNK = 2**18  # elements per chunk: its bytes, mask, input and output (2.5 MiB in float32) stay in cache
N_STREAMS = 4  # fixed, so that masks do not depend on the number of cores

# One pool per (process, thread count), made on first use. A forked child inherits the dict but not the threads,
# so it must not reuse its parent's pools.
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def keep_threshold(rate: float) -> int:
    """Return the uint32 threshold t: a uniform 32-bit word u keeps its element when u >= t, i.e. u / 2**32 >= rate."""
    rate = check_rate(rate)
    return min(math.ceil(rate * 2**32), 2**32 - 1)  # rate * 2**32 is exact in float64


def default_workers() -> int:
    """The number of threads the layer uses: the CPUs this process may run on, at most N_STREAMS."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(N_STREAMS, cpus))


def _check_float_array(x: np.ndarray, name: str) -> np.ndarray:
    """Return `x` if it is a floating-point NumPy array; raise a clear error otherwise."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must have a floating-point dtype (float16, float32 or float64), got {x.dtype}")
    return x


def _check_mask(mask: object, shape: tuple[int, ...]) -> np.ndarray:
    """Return `mask` if it is a boolean array of `shape`; raise a clear error otherwise."""
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != shape:
        got = f"{mask.dtype} array of shape {mask.shape}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise ValueError(f"mask must be a boolean array (True = keep) of the input's shape {shape}, got {got}")
    return mask


def _check_workers(workers: int | None) -> int:
    """Return `workers` (None means default_workers()) if it is a positive integer; raise a clear error otherwise."""
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, Integral) or workers < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    return int(workers)


def _scale_chunk(x: np.ndarray, keep: np.ndarray, scale: np.floating, out: np.ndarray) -> None:
    """Write x * scale * keep into `out`, in place, in x's dtype (1-D views of one chunk)."""
    np.multiply(x, scale, out=out)
    np.multiply(out, keep, out=out)


def draw_keep(bitgen: np.random.BitGenerator, threshold: int, keep: np.ndarray) -> None:
    """Fill the 1-D boolean array `keep` in place: element i is kept when its uniform 32-bit word u_i >= `threshold`.

    u_i's top byte comes from one random byte per element; the lower 24 bits are drawn only where that byte equals
    the threshold's top byte, since everywhere else the byte alone decides (see the module's docstring).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, Integral) or not 0 <= threshold < 2**32:
        raise ValueError(f"threshold must be an integer in [0, 2**32), as keep_threshold gives, got {threshold!r}")
    if not isinstance(keep, np.ndarray) or keep.dtype != np.bool_ or keep.ndim != 1:
        raise ValueError("keep must be a 1-D boolean NumPy array to fill in place")
    top, rest = np.uint8(threshold >> 24), np.uint32(threshold & 0xFF_FFFF)
    first = bitgen.random_raw(-(-keep.size // 8)).view(np.uint8)[: keep.size]  # eight bytes per 64-bit draw
    np.greater(first, top, out=keep)
    ties = np.flatnonzero(first == top)
    if ties.size:
        lower = bitgen.random_raw(-(-ties.size // 2)).view(np.uint32)[: ties.size] >> np.uint32(8)
        keep[ties] = lower >= rest


def _dropout_chunk(bitgen: np.random.BitGenerator, x: np.ndarray, threshold: int, scale: np.floating,
                   keep: np.ndarray, out: np.ndarray) -> None:
    """Draw one chunk's keep mask into `keep` and its output into `out` (1-D views of one chunk)."""
    draw_keep(bitgen, threshold, keep)
    _scale_chunk(x, keep, scale, out)


def _run_streams(task, workers: int) -> None:
    """Call task(stream) for every stream, in `workers` threads (1: in this thread, in order)."""
    if workers == 1:
        for stream in range(N_STREAMS):
            task(stream)
        return
    key = (os.getpid(), workers)
    if key not in _pools:
        _pools[key] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dropout")
    list(_pools[key].map(task, range(N_STREAMS)))  # list() waits for every stream and re-raises any error


def dropout_kernel(x: np.ndarray, rate: float, streams: Sequence[np.random.BitGenerator], *,
                   workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (x * keep / (1 - rate), keep) for a fresh boolean mask `keep` drawn from the N_STREAMS `streams`.

    The output has x's shape and dtype. The mask depends only on the streams' states and x's size: `workers` (the
    number of threads, default default_workers()) changes the speed, never the result.
    """
    _check_float_array(x, "x")
    rate = check_rate(rate)
    if len(streams) != N_STREAMS or not all(isinstance(s, np.random.BitGenerator) for s in streams):
        raise ValueError(f"streams must be a sequence of {N_STREAMS} NumPy bit generators")
    workers = _check_workers(workers)
    flat_x = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(x.shape, dtype=x.dtype)
    keep = np.empty(x.shape, dtype=np.bool_)
    flat_out, flat_keep = out.reshape(-1), keep.reshape(-1)
    threshold = keep_threshold(rate)
    scale = x.dtype.type(1.0 / (1.0 - rate))
    n_chunks = -(-flat_x.size // CHUNK)

    def fill(stream: int) -> None:
        for start in range(stream * CHUNK, flat_x.size, N_STREAMS * CHUNK):
            part = slice(start, start + CHUNK)
            _dropout_chunk(streams[stream], flat_x[part], threshold, scale, flat_keep[part], flat_out[part])

    _run_streams(fill, min(workers, n_chunks) if n_chunks else 1)
    return out, keep


def apply_mask(x: np.ndarray, keep: np.ndarray, rate: float) -> np.ndarray:
    """Return x * keep / (1 - rate) in x's dtype for a given boolean mask `keep` of x's shape (True = keep)."""
    _check_float_array(x, "x")
    _check_mask(keep, x.shape)
    rate = check_rate(rate)
    flat_x, flat_keep = np.ascontiguousarray(x).reshape(-1), np.ascontiguousarray(keep).reshape(-1)
    out = np.empty(x.shape, dtype=x.dtype)
    flat_out = out.reshape(-1)
    scale = x.dtype.type(1.0 / (1.0 - rate))
    for start in range(0, flat_x.size, CHUNK):
        part = slice(start, start + CHUNK)
        _scale_chunk(flat_x[part], flat_keep[part], scale, flat_out[part])
    return out


def _make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Return `seed` if it is a Generator, else a new default Generator seeded with it; raise a clear error on bad seeds."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0):
        raise TypeError(f"seed must be None, a non-negative int or a numpy.random.Generator, got {seed!r}")
    return np.random.default_rng(seed)


class Dropout:
    """Inverted dropout: in training, zero each element with probability `rate` and scale the rest by 1/(1 - rate).

    In evaluation mode the layer is the identity. `rate` is the DROP probability (PyTorch's `p`, Keras's `rate`),
    not the keep probability of Srivastava et al. A rate of 1 is rejected. The output, and the gradient that
    backward returns, keep the input's dtype. The masks come from `seed` (an int, None or a numpy Generator, which
    the layer then draws from) and N_STREAMS - 1 streams spawned from it; see the module's docstring.
    """

    def __init__(self, rate: float, *, seed: int | np.random.Generator | None = None) -> None:
        self.rate = check_rate(rate)
        self.rng = _make_rng(seed)
        try:
            children = self.rng.spawn(N_STREAMS - 1)
        except TypeError as error:
            raise TypeError("seed must be a Generator whose bit generator has a SeedSequence "
                            f"(as numpy.random.default_rng gives), so that streams can be spawned: {error}") from None
        self.streams: list[np.random.BitGenerator] = [self.rng.bit_generator] + [g.bit_generator for g in children]
        self.training = True
        self._mask: np.ndarray | None = None
        self._dtype: np.dtype | None = None

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

    @property
    def mask(self) -> np.ndarray | None:
        """The boolean mask (True = kept) of the last training-mode forward call, or None."""
        return self._mask

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Apply dropout to `x`; `mask` (boolean, True = keep, x's shape) replaces the random draw if given.

        In evaluation mode, or with rate 0, `x` itself is returned and a given mask is checked but not applied.
        """
        _check_float_array(x, "x")
        if mask is not None:
            _check_mask(mask, x.shape)
        if not self.training or self.rate == 0.0:
            self._mask = self._dtype = None
            return x
        if mask is None:
            out, self._mask = dropout_kernel(x, self.rate, self.streams)
        else:
            out, self._mask = apply_mask(x, mask, self.rate), mask.copy()
        self._dtype = x.dtype
        return out

    __call__ = forward

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Return the gradient with respect to the last forward call's input: grad_out times the same mask and scale."""
        _check_float_array(grad_out, "grad_out")
        if not self.training or self.rate == 0.0:
            return grad_out
        if self._mask is None:
            raise RuntimeError("backward() called before forward() in training mode")
        if grad_out.shape != self._mask.shape:
            raise ValueError(f"grad_out has shape {grad_out.shape}, the last forward input had {self._mask.shape}")
        if grad_out.dtype != self._dtype:
            raise TypeError(f"grad_out has dtype {grad_out.dtype}, the last forward input had {self._dtype}; "
                            "pass a gradient of the output's dtype")
        return apply_mask(grad_out, self._mask, self.rate)
