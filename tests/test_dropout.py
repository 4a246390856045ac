"""The NumPy reference dropout layer: statistics, gradients, modes, dtypes, determinism and bad input."""

import multiprocessing
import sys

import numpy as np
import pytest

from utils.checks import check_rate
from utils.dropout import (
    CHUNK,
    N_STREAMS,
    Dropout,
    apply_mask,
    default_workers,
    draw_keep,
    dropout_kernel,
    keep_threshold,
)
from utils.gradcheck import numerical_gradient_array, relative_error

MULTI_CHUNK = 5 * CHUNK + 123  # more chunks than streams, and a partial last chunk


def test_training_zeroes_about_rate_and_scales_survivors():
    layer = Dropout(0.3, seed=0)
    x = np.ones(200_000)
    y = layer(x)
    zeroed = np.mean(y == 0)
    # binomial standard error sqrt(p(1-p)/n) ~ 0.001; allow five of them
    assert abs(zeroed - 0.3) < 5 * np.sqrt(0.3 * 0.7 / x.size)
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7])
    assert abs(y.mean() - 1.0) < 5 * np.sqrt(0.3 / 0.7 / x.size)  # the mean is preserved


@pytest.mark.parametrize("rate", [0.05, 0.5, 0.9])
def test_every_chunk_and_stream_drops_about_rate(rate):
    y = Dropout(rate, seed=4)(np.ones(MULTI_CHUNK, dtype=np.float32))
    for start in range(0, y.size, CHUNK):
        chunk = y[start:start + CHUNK]
        zeroed = np.mean(chunk == 0)
        assert abs(zeroed - rate) < 5 * np.sqrt(rate * (1 - rate) / chunk.size), start
    assert not np.array_equal(y[:CHUNK] == 0, y[CHUNK:2 * CHUNK] == 0)  # chunks get different bytes


def test_eval_mode_is_the_identity_and_rate_zero_keeps_everything():
    x = np.random.default_rng(0).normal(size=(4, 5))
    assert Dropout(0.5, seed=0).eval()(x) is x
    assert Dropout(0.0, seed=0)(x) is x
    layer = Dropout(0.5, seed=0).eval()
    np.testing.assert_array_equal(layer.backward(np.ones((4, 5))), np.ones((4, 5)))
    assert layer.mask is None


def test_backward_reuses_the_forward_mask_and_matches_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4))
    weights = rng.normal(size=(3, 4))
    layer = Dropout(0.4, seed=2)
    layer(x)
    mask = layer.mask.copy()
    grad = layer.backward(weights)  # gradient of sum(weights * dropout(x))
    np.testing.assert_array_equal(grad, weights * mask / 0.6)
    numeric = numerical_gradient_array(lambda v: layer.forward(v, mask=mask), x, weights)
    assert relative_error(grad, numeric) < 1e-8


def test_the_mask_is_boolean_one_byte_per_element_and_matches_the_output():
    x = np.random.default_rng(0).normal(size=(300, 500)).astype(np.float32)
    layer = Dropout(0.25, seed=1)
    y = layer(x)
    assert layer.mask.dtype == np.bool_ and layer.mask.nbytes == x.size
    np.testing.assert_array_equal(y == 0, ~layer.mask)
    np.testing.assert_array_equal(y[layer.mask], x[layer.mask] * np.float32(1 / 0.75))


def test_each_call_draws_a_new_mask_and_seeds_repeat():
    x = np.ones(100)
    layer = Dropout(0.5, seed=3)
    assert not np.array_equal(layer(x), layer(x))
    np.testing.assert_array_equal(Dropout(0.5, seed=3)(x), Dropout(0.5, seed=3)(x))
    big = np.ones(MULTI_CHUNK, dtype=np.float32)
    np.testing.assert_array_equal(Dropout(0.5, seed=3)(big), Dropout(0.5, seed=3)(big))
    shared = np.random.default_rng(9)
    assert Dropout(0.5, seed=shared).rng is shared


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
    layer = Dropout(0.3, seed=rng)
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
    first, second = Dropout(0.5, seed=shared), Dropout(0.5, seed=shared)
    assert len(first.streams) == N_STREAMS and first.streams[0] is shared.bit_generator
    big = np.ones(MULTI_CHUNK)
    first(big), second(big)
    assert not np.array_equal(first.mask[CHUNK:2 * CHUNK], second.mask[CHUNK:2 * CHUNK])


@pytest.mark.parametrize("size", [1, CHUNK, CHUNK + 1, MULTI_CHUNK, 2 * N_STREAMS * CHUNK])
def test_the_mask_does_not_depend_on_the_number_of_threads(size):
    x = np.ones(size, dtype=np.float32)
    outputs = []
    for workers in (1, 2, 3, N_STREAMS, 8):
        streams = Dropout(0.4, seed=11).streams
        outputs.append(dropout_kernel(x, 0.4, streams, workers=workers))
    for out, keep in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0][0])
        np.testing.assert_array_equal(keep, outputs[0][1])
    assert 1 <= default_workers() <= N_STREAMS


def _large_forward_sum(seed: int) -> float:
    return float(Dropout(0.5, seed=seed)(np.ones(MULTI_CHUNK)).sum())


@pytest.mark.skipif(sys.platform != "linux", reason="the fork start method is Linux's default")
def test_a_forked_process_does_not_reuse_the_parent_threads():
    dropout_kernel(np.ones(MULTI_CHUNK), 0.5, Dropout(0.5, seed=0).streams, workers=2)  # the parent's pool exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_large_forward_sum, (8,)).get(timeout=60)
    assert child == _large_forward_sum(8)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(8, 8), (3, CHUNK // 2 + 7)])
def test_dtype_is_kept(dtype, shape):
    layer = Dropout(0.5, seed=0)
    x = np.ones(shape, dtype=dtype)
    y = layer(x)
    assert y.dtype == dtype and y.shape == shape
    np.testing.assert_array_equal(np.unique(y), np.array([0, 2], dtype=dtype))
    grad = layer.backward(np.ones(shape, dtype=dtype))
    assert grad.dtype == dtype
    np.testing.assert_array_equal(grad, y)
    assert layer(x, mask=np.ones(shape, dtype=bool)).dtype == dtype


def test_non_contiguous_input_gives_the_same_numbers():
    base = np.random.default_rng(0).normal(size=(200, 300))
    x = base[::2, ::3]
    assert not x.flags.c_contiguous
    np.testing.assert_array_equal(Dropout(0.5, seed=6)(x), Dropout(0.5, seed=6)(np.ascontiguousarray(x)))
    mask = np.ones((200, 300), dtype=bool).T
    mask[0] = False
    expected = 2 * base.T
    expected[0] = 0
    np.testing.assert_array_equal(apply_mask(base.T, mask, 0.5), expected)


def test_an_injected_mask_is_used_exactly_and_kept_for_backward():
    x = np.arange(1.0, 5.0)
    mask = np.array([True, False, True, False])
    layer = Dropout(0.5)
    np.testing.assert_array_equal(layer(x, mask=mask), [2.0, 0.0, 6.0, 0.0])
    mask[:] = True  # the layer kept its own copy
    np.testing.assert_array_equal(layer.backward(np.ones(4)), [2.0, 0.0, 2.0, 0.0])
    with pytest.raises(ValueError, match="mask"):
        Dropout(0.5)(x, mask=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="mask"):
        Dropout(0.5)(x, mask=np.ones(4))
    with pytest.raises(ValueError, match="mask"):
        Dropout(0.5)(x, mask=[True] * 4)
    with pytest.raises(ValueError, match="mask"):
        Dropout(0.5).eval()(x, mask=np.ones(3, dtype=bool))  # checked in eval mode too


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


@pytest.mark.parametrize("rate, error", [(1.0, ValueError), (1, ValueError), (-0.1, ValueError), (1.5, ValueError),
                                         (float("nan"), ValueError), ("0.5", TypeError), (True, TypeError)])
def test_bad_rates_are_rejected(rate, error):
    with pytest.raises(error, match="rate"):
        check_rate(rate)
    with pytest.raises(error, match="rate"):
        Dropout(rate)


def test_rate_one_is_rejected_with_the_reason():
    with pytest.raises(ValueError, match="infinite"):
        Dropout(1.0)


def test_bad_inputs_get_clear_errors():
    layer = Dropout(0.5, seed=0)
    with pytest.raises(TypeError, match="floating"):
        layer(np.ones(3, dtype=np.int64))
    with pytest.raises(TypeError, match="NumPy array"):
        layer([1.0, 2.0])
    with pytest.raises(RuntimeError, match="before forward"):
        Dropout(0.5).backward(np.ones(3))
    layer(np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        layer.backward(np.ones(4))
    with pytest.raises(TypeError, match="dtype float32, the last forward input had float64"):
        layer.backward(np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="floating"):
        layer.backward(np.ones(3, dtype=np.int32))
    with pytest.raises(TypeError, match="NumPy array"):
        layer.backward([1.0, 1.0, 1.0])


@pytest.mark.parametrize("seed", ["1", -1, 1.5, True])
def test_bad_seeds_are_rejected(seed):
    with pytest.raises(TypeError, match="seed"):
        Dropout(0.5, seed=seed)


def test_kernel_arguments_are_checked():
    streams = Dropout(0.5, seed=0).streams
    with pytest.raises(ValueError, match="streams"):
        dropout_kernel(np.ones(3), 0.5, streams[:2])
    with pytest.raises(ValueError, match="workers"):
        dropout_kernel(np.ones(3), 0.5, streams, workers=0)
    with pytest.raises(ValueError, match="rate"):
        dropout_kernel(np.ones(3), 1.0, streams)


def test_empty_and_zero_dimensional_inputs():
    layer = Dropout(0.5, seed=0)
    assert layer(np.ones((0, 4))).shape == (0, 4)
    scalar = layer(np.array(3.0))
    assert scalar.shape == () and scalar in (0.0, 6.0)


def test_keep_prob_and_repr():
    layer = Dropout(0.2)
    assert layer.keep_prob == pytest.approx(0.8)
    assert repr(layer.eval()) == "Dropout(rate=0.2, training=False)"
