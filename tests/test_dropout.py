"""The NumPy reference dropout layer: statistics, gradients, modes, dtypes, determinism and bad input."""

import numpy as np
import pytest

from utils.checks import check_rate
from utils.dropout import Dropout
from utils.gradcheck import numerical_gradient_array, relative_error


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.9])
def test_training_keeps_about_one_minus_rate_and_preserves_the_mean(rate):
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=200_000)  # unequal inputs: the mean is a second check
    layer = Dropout(rate, seed=1)
    y = layer(x)
    kept = np.mean(layer.mask)
    # binomial standard error sqrt(p(1-p)/n); allow five of them
    assert abs(kept - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / x.size)
    # output i has mean x_i and variance x_i**2 * rate / (1 - rate)
    assert abs(y.mean() - x.mean()) < 5 * np.sqrt(rate / (1 - rate) * np.mean(x**2) / x.size)
    np.testing.assert_array_equal(y == 0, ~layer.mask)


def test_the_mask_is_drawn_plainly_from_the_layer_generator():
    layer = Dropout(0.3, seed=np.random.default_rng(5))
    layer(np.ones((40, 50)))
    np.testing.assert_array_equal(layer.mask, np.random.default_rng(5).random((40, 50)) >= 0.3)
    np.testing.assert_array_equal(Dropout(0.3, seed=5).draw_mask((40, 50)), layer.mask)


def test_eval_mode_is_the_identity_and_rate_zero_keeps_everything():
    x = np.random.default_rng(0).normal(size=(4, 5))
    assert Dropout(0.5, seed=0).eval()(x) is x
    assert Dropout(0.0, seed=0)(x) is x
    layer = Dropout(0.5, seed=0)
    layer(x)
    layer.eval()
    grad = np.ones((4, 5))
    assert layer.backward(grad) is grad
    assert layer(x) is x and layer.mask is None
    assert layer.train().training and layer(x) is not x


def test_backward_reuses_the_forward_mask_and_matches_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4))
    weights = rng.normal(size=(3, 4))
    layer = Dropout(0.4, seed=2)
    layer(x)
    mask = layer.mask.copy()
    grad = layer.backward(weights)  # gradient of sum(weights * dropout(x))
    np.testing.assert_array_equal(grad, weights * mask * (1 / 0.6))
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
    shared = np.random.default_rng(9)
    assert Dropout(0.5, seed=shared).rng is shared


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtype_is_kept(dtype):
    layer = Dropout(0.5, seed=0)
    x = np.ones((8, 8), dtype=dtype)
    y = layer(x)
    assert y.dtype == dtype and y.shape == (8, 8)
    np.testing.assert_array_equal(np.unique(y), np.array([0, 2], dtype=dtype))
    grad = layer.backward(np.ones((8, 8), dtype=dtype))
    assert grad.dtype == dtype
    np.testing.assert_array_equal(grad, y)
    assert layer(x, mask=np.ones((8, 8), dtype=bool)).dtype == dtype


def test_a_dropped_element_is_zero_even_where_the_scaled_value_would_overflow():
    x = np.full(4, 60_000, dtype=np.float16)  # 60000 * 2 overflows float16
    layer = Dropout(0.5)
    with np.errstate(over="ignore"):
        y = layer(x, mask=np.array([True, False, True, False]))
    np.testing.assert_array_equal(y, np.array([np.inf, 0, np.inf, 0], dtype=np.float16))


def test_non_contiguous_input_and_mask():
    base = np.random.default_rng(0).normal(size=(200, 300))
    mask = np.ones((200, 300), dtype=bool).T
    mask[0] = False
    expected = 2 * base.T
    expected[0] = 0
    np.testing.assert_array_equal(Dropout(0.5)(base.T, mask=mask), expected)
    x = base[::2, ::3]
    layer = Dropout(0.5, seed=6)
    np.testing.assert_array_equal(layer(x), Dropout(0.5, seed=6)(np.ascontiguousarray(x)))


def test_an_injected_mask_is_used_exactly_and_kept_for_backward():
    x = np.arange(1.0, 5.0)
    mask = np.array([True, False, True, False])
    layer = Dropout(0.5)
    np.testing.assert_array_equal(layer(x, mask=mask), [2.0, 0.0, 6.0, 0.0])
    mask[:] = True  # the layer kept its own copy
    np.testing.assert_array_equal(layer.backward(np.ones(4)), [2.0, 0.0, 2.0, 0.0])
    broadcast = np.broadcast_to(np.array([True, False]), (3, 2))  # read-only, not contiguous: accepted
    np.testing.assert_array_equal(layer(np.ones((3, 2)), mask=broadcast), [[2.0, 0.0]] * 3)


@pytest.mark.parametrize("mask", [np.ones(3, dtype=bool), np.ones(4), [True] * 4, np.ones((4, 1), dtype=bool)])
def test_bad_masks_are_rejected_in_both_modes(mask):
    x = np.arange(1.0, 5.0)
    with pytest.raises(ValueError, match="mask"):
        Dropout(0.5)(x, mask=mask)
    with pytest.raises(ValueError, match="mask"):
        Dropout(0.5).eval()(x, mask=mask)  # checked in eval mode too


@pytest.mark.parametrize("rate, error", [(1.0, ValueError), (1, ValueError), (-0.1, ValueError), (1.5, ValueError),
                                         (float("nan"), ValueError), ("0.5", TypeError), (True, TypeError),
                                         (None, TypeError)])
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
    with pytest.raises(TypeError, match="floating"):
        layer(np.ones(3, dtype=bool))
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
    layer.eval()
    with pytest.raises(TypeError, match="floating"):
        layer.backward(np.ones(3, dtype=np.int32))  # checked in eval mode too
    layer.train()(np.ones(3), mask=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="shape"):
        layer.backward(np.ones(4))  # after a given mask too


@pytest.mark.parametrize("seed", ["1", -1, 1.5, True])
def test_bad_seeds_are_rejected(seed):
    with pytest.raises(TypeError, match="seed"):
        Dropout(0.5, seed=seed)


def test_empty_and_zero_dimensional_inputs():
    layer = Dropout(0.5, seed=0)
    empty = layer(np.ones((0, 4)))
    assert empty.shape == (0, 4) and layer.backward(np.ones((0, 4))).shape == (0, 4)
    scalar = layer(np.array(3.0))
    assert isinstance(scalar, np.ndarray) and scalar.shape == () and scalar in (0.0, 6.0)
    assert layer.backward(np.array(1.0)) == scalar / 3


def test_keep_prob_and_repr():
    layer = Dropout(0.2)
    assert layer.keep_prob == pytest.approx(0.8)
    assert repr(layer.eval()) == "Dropout(rate=0.2, training=False)"
