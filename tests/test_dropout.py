"""The NumPy reference dropout layer: statistics, gradients, modes, dtypes and bad input."""

import numpy as np
import pytest

from utils.dropout import Dropout, check_rate


def test_training_zeroes_about_rate_and_scales_survivors():
    layer = Dropout(0.3, seed=0)
    x = np.ones(200_000)
    y = layer(x)
    zeroed = np.mean(y == 0)
    # binomial standard error sqrt(p(1-p)/n) ~ 0.001; allow five of them
    assert abs(zeroed - 0.3) < 5 * np.sqrt(0.3 * 0.7 / x.size)
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7])
    assert abs(y.mean() - 1.0) < 0.01  # the mean is preserved


def test_eval_mode_is_the_identity_and_rate_zero_keeps_everything():
    x = np.random.default_rng(0).normal(size=(4, 5))
    assert Dropout(0.5, seed=0).eval()(x) is x
    assert Dropout(0.0, seed=0)(x) is x
    layer = Dropout(0.5, seed=0).eval()
    np.testing.assert_array_equal(layer.backward(np.ones((4, 5))), np.ones((4, 5)))


def test_backward_reuses_the_forward_mask_and_matches_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4))
    weights = rng.normal(size=(3, 4))
    layer = Dropout(0.4, seed=2)
    layer(x)
    mask = layer._scaled_mask.copy()
    grad = layer.backward(weights)  # gradient of sum(weights * dropout(x))
    h = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        plus = np.sum(weights * layer.forward(x + step, mask=mask > 0))
        minus = np.sum(weights * layer.forward(x - step, mask=mask > 0))
        numeric[index] = (plus - minus) / (2 * h)
    relative = np.abs(grad - numeric).max() / np.abs(numeric).max()
    assert relative < 1e-8


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
    assert layer(x).dtype == dtype
    assert layer.backward(np.ones((8, 8), dtype=dtype)).dtype == dtype


def test_an_injected_mask_is_used_exactly():
    x = np.arange(1.0, 5.0)
    mask = np.array([True, False, True, False])
    np.testing.assert_array_equal(Dropout(0.5)(x, mask=mask), [2.0, 0.0, 6.0, 0.0])
    with pytest.raises(ValueError, match="mask"):
        Dropout(0.5)(x, mask=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="mask"):
        Dropout(0.5)(x, mask=np.ones(4))


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


def test_keep_prob_and_repr():
    layer = Dropout(0.2)
    assert layer.keep_prob == pytest.approx(0.8)
    assert repr(layer.eval()) == "Dropout(rate=0.2, training=False)"
