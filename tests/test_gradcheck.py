"""Numerical gradients and the relative error: known derivatives, x left unchanged, and bad input."""

import numpy as np
import pytest

from utils.gradcheck import ERROR_FLOOR, numerical_gradient, numerical_gradient_array, relative_error


def test_numerical_gradient_of_known_functions():
    x = np.random.default_rng(0).normal(size=(3, 4))
    before = x.copy()
    grad = numerical_gradient(lambda v: float(np.sum(v**3)), x)
    assert relative_error(grad, 3 * x**2) < 1e-7  # the truncation error h**2 is 1e-10, on gradients near 0.005
    grad = numerical_gradient(lambda v: float(np.sum(v**2)), x)
    assert relative_error(grad, 2 * x) < 1e-8
    np.testing.assert_array_equal(x, before)  # every nudge was undone
    grad = numerical_gradient(lambda v: float(np.sum(np.sin(v))), x)
    assert relative_error(grad, np.cos(x)) < 1e-8


def test_numerical_gradient_array_gives_what_backward_should_return():
    rng = np.random.default_rng(1)
    x, grad_out = rng.normal(size=(5, 3)), rng.normal(size=(5, 6))
    weights = rng.normal(size=(3, 6))
    before = x.copy()
    numeric = numerical_gradient_array(lambda v: v @ weights, x, grad_out)
    assert relative_error(grad_out @ weights.T, numeric) < 1e-8
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_array_copes_with_functions_returning_views_of_x():
    x, grad_out = np.array([1.0, -2.0, 3.0]), np.array([0.5, 2.0, -1.0])
    numeric = numerical_gradient_array(lambda v: v, x, grad_out)  # the identity returns x itself
    assert relative_error(numeric, grad_out) < 1e-8


def test_a_wrong_gradient_is_caught():
    x = np.random.default_rng(2).normal(size=10)
    numeric = numerical_gradient(lambda v: float(np.sum(v**2)), x)
    assert relative_error(x, numeric) > 0.3  # forgot the factor 2
    assert relative_error(2 * x, numeric) < 1e-8


def test_relative_error_values():
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert relative_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0  # two zero gradients agree
    assert relative_error(np.array([0.0]), np.array([1e-12])) == pytest.approx(1e-12 / ERROR_FLOOR)
    assert relative_error(np.array([1, 2]), np.array([1.0, 2.0])) == 0.0


def test_relative_error_rejects_bad_input():
    with pytest.raises(ValueError, match="shapes"):
        relative_error(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="empty"):
        relative_error(np.ones(0), np.ones(0))
    with pytest.raises(ValueError, match="NaN"):
        relative_error(np.array([np.nan]), np.ones(1))
    with pytest.raises(TypeError, match="numeric"):
        relative_error(np.array(["a"]), np.array(["b"]))


def test_numerical_gradients_reject_bad_input():
    x = np.ones(3)
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda v: float(v.sum()), np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="NumPy array"):
        numerical_gradient(lambda v: float(v.sum()), [1.0, 2.0])
    with pytest.raises(TypeError, match="callable"):
        numerical_gradient(3, x)
    with pytest.raises(ValueError, match="positive"):
        numerical_gradient(lambda v: float(v.sum()), x, h=0.0)
    with pytest.raises(TypeError, match="step"):
        numerical_gradient(lambda v: float(v.sum()), x, h="small")
    with pytest.raises(ValueError, match="scalar"):
        numerical_gradient(lambda v: v * 2, x)
    with pytest.raises(ValueError, match="shape"):
        numerical_gradient_array(lambda v: v[:2], x, np.ones(3))
    with pytest.raises(TypeError, match="grad_out"):
        numerical_gradient_array(lambda v: v, x, np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="callable"):
        numerical_gradient_array(None, x, np.ones(3))
