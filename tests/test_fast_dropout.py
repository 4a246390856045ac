"""FastDropout and its kernel: the reference layer's bits for the same mask, statistics, byte-first draws, threads."""

import multiprocessing
import sys

import numpy as np
import pytest

from utils.dropout import Dropout
from utils.fast_dropout import (
    CHUNK,
    N_STREAMS,
    FastDropout,
    default_workers,
    draw_keep,
    dropout_kernel,
    keep_mask,
    keep_threshold,
)

MULTI_CHUNK = 5 * CHUNK + 123  # more chunks than streams, and a partial last chunk
SHAPES = [(), (0, 4), (7,), (33, 20), (2, CHUNK // 2 + 7), (MULTI_CHUNK,)]


def assert_same_bits(a: np.ndarray, b: np.ndarray) -> None:
    """Equal dtype, shape and bytes: -0.0 and 0.0 differ here, as do NaNs of different payloads."""
    assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_the_reference_gives_the_same_bits_for_the_same_mask(dtype, shape, rate):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)  # negative inputs: a dropped one is -0.0 in both layers
    grad_out = rng.standard_normal(shape).astype(dtype)
    fast, reference = FastDropout(rate, seed=1), Dropout(rate)
    out = fast(x)
    assert_same_bits(out, reference(x, mask=fast.mask))
    assert_same_bits(fast.backward(grad_out), reference.backward(grad_out))
    given = np.asarray(rng.random(shape) >= rate)  # and for a given mask
    assert_same_bits(fast(x, mask=given), reference(x, mask=given))


def test_the_same_bits_where_the_scaled_value_overflows():
    x = np.full(CHUNK + 10, 60_000, dtype=np.float16)  # 60000 / (1 - 0.5) overflows float16
    fast = FastDropout(0.5, seed=2)
    with np.errstate(over="ignore"):
        out = fast(x)
        assert_same_bits(out, Dropout(0.5)(x, mask=fast.mask))
    assert np.all(out[~fast.mask] == 0) and np.all(np.isinf(out[fast.mask]))
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):  # the caller's errstate holds in the threads
        dropout_kernel(np.full(MULTI_CHUNK, 60_000, dtype=np.float16), 0.5, fast.streams, workers=2)


@pytest.mark.parametrize("rate", [0.05, 0.3, 0.5, 0.9])
def test_keeps_about_one_minus_rate_and_preserves_the_mean(rate):
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=MULTI_CHUNK).astype(np.float32)
    layer = FastDropout(rate, seed=4)
    y = layer(x)
    kept = np.mean(layer.mask)
    assert abs(kept - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / x.size)
    x_square = np.mean(np.square(x, dtype=np.float64))
    assert abs(y.mean(dtype=np.float64) - x.mean(dtype=np.float64)) < 5 * np.sqrt(rate / (1 - rate) * x_square / x.size)
    for start in range(0, y.size, CHUNK):  # every chunk, from every stream, drops about `rate`
        chunk = layer.mask[start:start + CHUNK]
        assert abs(np.mean(chunk) - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / chunk.size), start
    assert not np.array_equal(layer.mask[:CHUNK], layer.mask[CHUNK:2 * CHUNK])  # chunks get different bytes


def test_draw_mask_draws_what_forward_draws():
    shape = (3, CHUNK)
    drawn = FastDropout(0.3, seed=8).draw_mask(shape)
    np.testing.assert_array_equal(drawn, FastDropout(0.3, seed=8)(np.ones(shape)) != 0)
    np.testing.assert_array_equal(keep_mask(shape, 0.3, FastDropout(0.3, seed=8).streams),
                                  FastDropout(0.3, seed=8).draw_mask(shape))


def test_each_call_draws_a_new_mask_and_seeds_repeat():
    big = np.ones(MULTI_CHUNK, dtype=np.float32)
    layer = FastDropout(0.5, seed=3)
    assert not np.array_equal(layer(big), layer(big))
    np.testing.assert_array_equal(FastDropout(0.5, seed=3)(big), FastDropout(0.5, seed=3)(big))
    shared = np.random.default_rng(9)
    assert FastDropout(0.5, seed=shared).rng is shared


class ScriptedWords:
    """A stand-in bit generator whose random_raw hands out prescribed 64-bit words, in order."""

    def __init__(self, *blocks: np.ndarray) -> None:
        self.blocks = [np.ascontiguousarray(block).view(np.uint64) for block in blocks]

    def random_raw(self, size: int) -> np.ndarray:
        block = self.blocks.pop(0)
        assert block.size == size, (block.size, size)
        return block


@pytest.mark.parametrize("threshold", [0, 1, 2**31, keep_threshold(0.3), keep_threshold(0.9), 2**32 - 1])
def test_draw_keep_decides_exactly_as_whole_32_bit_words_would(threshold):
    """Every first byte, and for ties lower bits on both sides of the threshold: the byte-first rule is u >= t."""
    first = np.repeat(np.arange(256, dtype=np.uint8), 8)  # each byte 8 times: 2048 elements, 256 draws
    top, rest = threshold >> 24, threshold & 0xFF_FFFF
    n_ties = int(np.count_nonzero(first == top))
    lower24 = np.array([0, rest - 1, rest, rest + 1, 0xFF_FFFF, rest, rest - 1, 0xFF_FFFF], dtype=np.int64)
    lower24 = np.clip(lower24, 0, 0xFF_FFFF).astype(np.uint32)[:n_ties]
    tie_words = (lower24 << np.uint32(8)) | np.uint32(0xAB)  # the lowest 8 bits of a tie's word are not used
    tie_block = np.concatenate([tie_words, np.zeros(n_ties % 2, np.uint32)])
    keep = np.empty(first.size, dtype=bool)
    draw_keep(ScriptedWords(first, tie_block), threshold, keep)
    words = first.astype(np.uint64) << np.uint64(24)
    words[first == top] |= lower24
    np.testing.assert_array_equal(keep, words >= threshold)


@pytest.mark.parametrize("threshold, keep", [(-1, np.empty(4, bool)), (2**32, np.empty(4, bool)),
                                             (0.5, np.empty(4, bool)), (True, np.empty(4, bool)),
                                             (7, np.empty(4)), (7, np.empty((2, 2), bool)), (7, [True] * 4)])
def test_draw_keep_rejects_bad_thresholds_and_buffers(threshold, keep):
    with pytest.raises(ValueError, match="threshold|keep"):
        draw_keep(np.random.PCG64(0), threshold, keep)


def test_a_small_input_takes_its_bytes_from_the_seed_generator_itself():
    rng, copy = np.random.default_rng(5), np.random.default_rng(5)
    layer = FastDropout(0.3, seed=rng)
    layer(np.ones(1001))
    first = copy.bit_generator.random_raw(126).view(np.uint8)[:1001]  # eight bytes per 64-bit draw
    top = keep_threshold(0.3) >> 24
    assert layer.mask[first > top].all() and not layer.mask[first < top].any()
    n_ties = int(np.count_nonzero(first == top))
    assert n_ties > 0  # this seed has ties, so the second draw is exercised
    copy.bit_generator.random_raw(-(-n_ties // 2))
    assert rng.bit_generator.state == copy.bit_generator.state  # the generator advanced by exactly those draws


def test_layers_sharing_a_generator_get_different_streams():
    shared = np.random.default_rng(0)
    first, second = FastDropout(0.5, seed=shared), FastDropout(0.5, seed=shared)
    assert len(first.streams) == N_STREAMS and first.streams[0] is shared.bit_generator
    big = np.ones(MULTI_CHUNK)
    first(big), second(big)
    assert not np.array_equal(first.mask[CHUNK:2 * CHUNK], second.mask[CHUNK:2 * CHUNK])


@pytest.mark.parametrize("size", [1, CHUNK, CHUNK + 1, MULTI_CHUNK, 2 * N_STREAMS * CHUNK])
def test_the_mask_does_not_depend_on_the_number_of_threads(size):
    x = np.ones(size, dtype=np.float32)
    outputs = []
    for workers in (1, 2, 3, N_STREAMS, 8):
        outputs.append(dropout_kernel(x, 0.4, FastDropout(0.4, seed=11).streams, workers=workers))
        np.testing.assert_array_equal(keep_mask(x.shape, 0.4, FastDropout(0.4, seed=11).streams, workers=workers),
                                      outputs[0][1])
    for out, keep in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0][0])
        np.testing.assert_array_equal(keep, outputs[0][1])
    assert 1 <= default_workers() <= N_STREAMS


def _large_forward_sum(seed: int) -> float:
    return float(FastDropout(0.5, seed=seed)(np.ones(MULTI_CHUNK)).sum())


@pytest.mark.skipif(sys.platform != "linux", reason="the fork start method is Linux's default")
def test_a_forked_process_does_not_reuse_the_parent_threads():
    dropout_kernel(np.ones(MULTI_CHUNK), 0.5, FastDropout(0.5, seed=0).streams, workers=2)  # the parent's pool exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_large_forward_sum, (8,)).get(timeout=60)
    assert child == _large_forward_sum(8)


def test_non_contiguous_input_gives_the_same_numbers():
    x = np.random.default_rng(0).normal(size=(200, 300))[::2, ::3]
    assert not x.flags.c_contiguous
    np.testing.assert_array_equal(FastDropout(0.5, seed=6)(x), FastDropout(0.5, seed=6)(np.ascontiguousarray(x)))


def test_keep_threshold_gives_the_keep_probability_to_within_2_to_the_minus_32():
    assert keep_threshold(0.0) == 0
    assert keep_threshold(0.5) == 2**31
    assert keep_threshold(0.25) == 2**30
    for rate in (0.1, 0.3, 0.9, 1 - 2**-40):
        threshold = keep_threshold(rate)
        assert 0 <= threshold < 2**32
        assert abs((2**32 - threshold) / 2**32 - (1 - rate)) <= 2**-32
    with pytest.raises(ValueError, match="rate"):
        keep_threshold(1.0)


def test_kernel_arguments_are_checked():
    streams = FastDropout(0.5, seed=0).streams
    for call in (lambda **kw: dropout_kernel(np.ones(3), **kw), lambda **kw: keep_mask((3,), **kw)):
        with pytest.raises(ValueError, match="streams"):
            call(rate=0.5, streams=streams[:2])
        with pytest.raises(ValueError, match="streams"):
            call(rate=0.5, streams=[np.random.default_rng(0)] * N_STREAMS)  # Generators, not bit generators
        with pytest.raises(ValueError, match="workers"):
            call(rate=0.5, streams=streams, workers=0)
        with pytest.raises(ValueError, match="workers"):
            call(rate=0.5, streams=streams, workers=True)
        with pytest.raises(ValueError, match="rate"):
            call(rate=1.0, streams=streams)
    with pytest.raises(TypeError, match="floating"):
        dropout_kernel(np.ones(3, dtype=np.int8), 0.5, streams)


def test_bad_inputs_get_the_reference_layer_errors():
    layer = FastDropout(0.5, seed=0)
    with pytest.raises(TypeError, match="floating"):
        layer(np.ones(3, dtype=np.int64))
    with pytest.raises(TypeError, match="NumPy array"):
        layer([1.0, 2.0])
    with pytest.raises(ValueError, match="mask"):
        layer(np.ones(3), mask=np.ones(4, dtype=bool))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones(3))
    layer(np.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        layer.backward(np.ones(4, dtype=np.float32))
    with pytest.raises(TypeError, match="dtype"):
        layer.backward(np.ones(3))
    with pytest.raises(ValueError, match="infinite"):
        FastDropout(1.0)
    for seed in ("1", -1, True):
        with pytest.raises(TypeError, match="seed"):
            FastDropout(0.5, seed=seed)


def test_eval_mode_rate_zero_and_repr():
    x = np.ones((4, 5))
    assert FastDropout(0.5, seed=0).eval()(x) is x
    assert FastDropout(0.0, seed=0)(x) is x
    layer = FastDropout(0.25)
    assert isinstance(layer, Dropout) and repr(layer) == "FastDropout(rate=0.25, training=True)"
