"""A fast variant of the reference NumPy layer: `FastDropout`, and the kernel behind it.

`FastDropout` draws its mask another way, and scales each chunk right after drawing its mask; for the same mask its
output and gradient are those of `utils.dropout.Dropout`, bit for bit, since both scale with the same formula. From
the same seed the two layers draw different masks. How it draws a mask (the chapter "What dropout costs"
builds this up step by step, under "A fast NumPy kernel"):

- Each element conceptually gets one uniform 32-bit word u and is kept when u >= `keep_threshold(rate)`, which
  happens with probability 1 - rate to within 2**-32. The words are drawn lazily (`draw_keep`): first one random
  byte per element, the word's top 8 bits, from a NumPy bit generator's `random_raw`. A byte above the threshold's
  top byte keeps the element and one below drops it, whatever the other 24 bits are; only on a tie (probability
  1/256) is a second word drawn for the lower 24 bits. That is the same decision as comparing whole 32-bit words,
  at about 8.1 random bits per element instead of 32. No float uniforms and no float64 temporaries are made.
- The work is cut into chunks of CHUNK elements, small enough that a chunk's random bytes, mask, input and output
  stay in the CPU's caches between the steps that touch them, and large enough that Python's per-call overhead is
  small beside the work. The forward pass draws and scales each chunk before it moves on to the next.
- There are N_STREAMS random streams: the layer's own generator and N_STREAMS - 1 children spawned from it. Chunk k
  always takes its bytes from stream k % N_STREAMS, and each stream fills its chunks in order, so the mask depends
  on the seed and the input's size only, never on how many threads do the work. NumPy releases the GIL while it
  fills and compares arrays, so the streams can run in parallel threads.
"""

from __future__ import annotations

import contextvars
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral

import numpy as np

from utils.checks import check_rate
from utils.dropout import Dropout, _apply_mask, _check_float_array

CHUNK = 2**18  # elements per chunk: its bytes, mask, input and output (2.5 MiB in float32) stay in cache
N_STREAMS = 4  # fixed, so that masks do not depend on the number of cores

# One pool per (process, thread count), made on first use. A forked child inherits the dict but not the threads,
# so it must not reuse its parent's pools.
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def keep_threshold(rate: float) -> int:
    """Return the uint32 threshold t: a uniform 32-bit word u keeps its element when u >= t, i.e. u / 2**32 >= rate.

    Chapter: costs
    """
    rate = check_rate(rate)
    return min(math.ceil(rate * 2**32), 2**32 - 1)  # rate * 2**32 is exact in float64


def default_workers() -> int:
    """The number of threads the fast kernel uses: the CPUs this process may run on, at most N_STREAMS.

    Chapter: costs
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(N_STREAMS, cpus))


def draw_keep(bitgen: np.random.BitGenerator, threshold: int, keep: np.ndarray) -> None:
    """Fill the 1-D boolean array `keep` in place: element i is kept when its uniform 32-bit word u_i >= `threshold`.

    u_i's top byte comes from one random byte per element; the lower 24 bits are drawn only where that byte equals
    the threshold's top byte, since everywhere else the byte alone decides (see the module's docstring).
    Chapter: costs
    """
    if isinstance(threshold, bool) or not isinstance(threshold, Integral) or not 0 <= threshold < 2**32:
        raise ValueError(f"threshold must be an integer in [0, 2**32), as keep_threshold gives, got {threshold!r}")
    if not isinstance(keep, np.ndarray) or keep.dtype != np.bool_ or keep.ndim != 1:
        raise ValueError("keep must be a 1-D boolean NumPy array to fill in place")
    _draw_keep(bitgen, threshold, keep)


def _draw_keep(bitgen: np.random.BitGenerator, threshold: int,
               keep: np.ndarray) -> None:
    """draw_keep without its argument checks."""
    top, rest = np.uint8(threshold >> 24), np.uint32(threshold & 0xFF_FFFF)
    # one random byte per element: eight from each 64-bit draw
    first = bitgen.random_raw(-(-keep.size // 8)).view(np.uint8)[: keep.size]
    np.greater(first, top, out=keep)  # the byte decides, except on a tie
    ties = np.flatnonzero(first == top)
    if ties.size:  # a tie: 24 more bits decide, two 32-bit words per 64-bit draw
        words = bitgen.random_raw(-(-ties.size // 2)).view(np.uint32)[: ties.size]
        keep[ties] = (words >> np.uint32(8)) >= rest


def _check_kernel_args(rate: float, streams: Sequence[np.random.BitGenerator],
                       workers: int | None) -> tuple[float, Sequence[np.random.BitGenerator], int]:
    """Return (rate, streams, workers) checked, workers None replaced by default_workers(); raise clear errors."""
    if len(streams) != N_STREAMS or not all(isinstance(s, np.random.BitGenerator) for s in streams):
        raise ValueError(f"streams must be a sequence of {N_STREAMS} NumPy bit generators")
    if workers is None:
        workers = default_workers()
    elif isinstance(workers, bool) or not isinstance(workers, Integral) or workers < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    return check_rate(rate), streams, int(workers)


def _run_chunks(size: int, workers: int, work: Callable[[int, slice], None]) -> None:
    """Call work(stream, chunk) for each chunk: chunk k on stream k % N_STREAMS.

    The streams run in `workers` threads (1: in this thread, one after the other), each
    in a copy of the caller's context, so that the caller's np.errstate holds there too.
    """

    def run(stream: int) -> None:
        for start in range(stream * CHUNK, size, N_STREAMS * CHUNK):
            work(stream, slice(start, start + CHUNK))

    workers = min(workers, -(-size // CHUNK))  # no more threads than chunks
    if workers <= 1:
        for stream in range(N_STREAMS):
            run(stream)
        return
    key = (os.getpid(), workers)
    if key not in _pools:
        _pools[key] = ThreadPoolExecutor(max_workers=workers,
                                         thread_name_prefix="dropout")
    # one context per stream: a context runs in one thread at a time
    contexts = [contextvars.copy_context() for _ in range(N_STREAMS)]
    # list() waits for every stream and re-raises any error
    list(_pools[key].map(lambda context, stream: context.run(run, stream),
                         contexts, range(N_STREAMS)))


def _keep_mask(shape: tuple[int, ...], rate: float, streams: Sequence[np.random.BitGenerator],
               workers: int) -> np.ndarray:
    """keep_mask without its argument checks."""
    keep = np.empty(shape, dtype=np.bool_)
    flat_keep, threshold = keep.reshape(-1), keep_threshold(rate)
    _run_chunks(keep.size, workers, lambda stream, part: _draw_keep(streams[stream], threshold, flat_keep[part]))
    return keep


def _dropout_kernel(x: np.ndarray, rate: float,
                    streams: Sequence[np.random.BitGenerator],
                    workers: int) -> tuple[np.ndarray, np.ndarray]:
    """dropout_kernel without its argument checks."""
    flat_x = np.ascontiguousarray(x).reshape(-1)
    out, keep = np.empty(x.shape, dtype=x.dtype), np.empty(x.shape, dtype=np.bool_)
    flat_out, flat_keep = out.reshape(-1), keep.reshape(-1)
    threshold = keep_threshold(rate)

    def chunk(stream: int, part: slice) -> None:
        _draw_keep(streams[stream], threshold, flat_keep[part])
        _apply_mask(flat_x[part], flat_keep[part], rate, out=flat_out[part])

    _run_chunks(flat_x.size, workers, chunk)
    return out, keep


def keep_mask(shape: tuple[int, ...], rate: float, streams: Sequence[np.random.BitGenerator], *,
              workers: int | None = None) -> np.ndarray:
    """Return a fresh boolean mask of `shape` (True = keep) drawn from the N_STREAMS `streams`, chunk by chunk.

    It is the mask that dropout_kernel would draw from the same stream states for an input of that shape.
    Chapter: costs
    """
    return _keep_mask(shape, *_check_kernel_args(rate, streams, workers))


def dropout_kernel(x: np.ndarray, rate: float, streams: Sequence[np.random.BitGenerator], *,
                   workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (x * keep * (1/(1 - rate)), keep) for a fresh boolean mask `keep` drawn from the `streams`.

    The output has x's shape and dtype, and is scaled exactly as the reference layer scales. The mask depends only
    on the streams' states and x's size: `workers` (the number of threads, default default_workers()) changes the
    speed, never the result.
    Chapter: costs
    """
    _check_float_array(x, "x")
    return _dropout_kernel(x, *_check_kernel_args(rate, streams, workers))


class FastDropout(Dropout):
    """The reference Dropout layer with a faster mask: one random byte per element, in chunks, from N_STREAMS streams.

    Outputs and gradients equal the reference layer's, bit for bit, for the same mask; only the masks that a seed
    gives differ. `seed` must give a Generator whose N_STREAMS - 1 extra streams can be spawned (an int, None, or a
    Generator from numpy.random.default_rng); the streams are in `self.streams`, the first one is `self.rng`'s.

    Chapter: costs
    """

    def __init__(self, rate: float, *, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(rate, seed=seed)
        try:
            children = self.rng.spawn(N_STREAMS - 1)
        except TypeError as error:
            raise TypeError("seed must be a Generator whose bit generator has a SeedSequence "
                            f"(as numpy.random.default_rng gives), so that streams can be spawned: {error}") from None
        self.streams: list[np.random.BitGenerator] = [self.rng.bit_generator] + [g.bit_generator for g in children]

    def draw_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """Draw a fresh boolean mask of `shape` from the streams, as the forward pass does."""
        return _keep_mask(shape, self.rate, self.streams, default_workers())

    def _draw_and_apply(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Draw the mask and scale x chunk by chunk, while each chunk is in the CPU's cache."""
        return _dropout_kernel(x, self.rate, self.streams, default_workers())
