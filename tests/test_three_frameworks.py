"""NumPy, Keras and PyTorch dropout agree: same mask in, same outputs and input gradients out."""

import numpy as np
import pytest

from utils.chapters.three_frameworks import (
    RTOL,
    Result,
    agreement_table,
    builtin_masks,
    max_relative_gap,
    run_all,
    run_numpy,
)

SHAPES = [(7,), (16, 33), (2, 3, 5, 4)]


def make_case(shape: tuple[int, ...], dtype: type, rate: float, seed: int = 0):
    """An input with no zeros, a keep-mask drawn at `rate` and an upstream gradient."""
    rng = np.random.default_rng(seed)
    x = (rng.uniform(0.5, 2.0, shape) * rng.choice([-1, 1], shape)).astype(dtype)
    keep_mask = rng.random(shape) >= rate
    grad_out = rng.standard_normal(shape).astype(dtype)
    return x, keep_mask, grad_out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [0.0, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("shape", SHAPES)
def test_same_mask_same_output_and_gradient(shape, rate, dtype):
    x, keep_mask, grad_out = make_case(shape, dtype, rate)
    results = run_all(x, rate, keep_mask, grad_out)
    assert set(results) == {"NumPy", "Keras", "PyTorch"}
    for name, result in results.items():
        assert result.output.dtype == dtype and result.grad.dtype == dtype, name
        assert result.output.shape == shape and result.grad.shape == shape, name
    for name, row in agreement_table(results).items():
        assert row["largest relative gap"] <= RTOL[np.dtype(dtype)], (name, row)


def test_the_reference_is_right_not_just_consistent():
    """Agreement alone would pass three identical bugs, so pin the reference to the definition."""
    rate = 0.25
    x, keep_mask, grad_out = make_case((50, 40), np.float64, rate, seed=3)
    reference = run_numpy(x, rate, keep_mask, grad_out)
    np.testing.assert_allclose(reference.output, np.where(keep_mask, x / (1 - rate), 0.0), rtol=1e-15)
    np.testing.assert_allclose(reference.grad, np.where(keep_mask, grad_out / (1 - rate), 0.0), rtol=1e-15)


def test_a_different_mask_is_detected():
    x, keep_mask, grad_out = make_case((30, 30), np.float32, 0.5)
    reference = run_numpy(x, 0.5, keep_mask, grad_out)
    flipped = keep_mask.copy()
    flipped[0, 0] = not flipped[0, 0]
    other = run_numpy(x, 0.5, flipped, grad_out)
    assert max_relative_gap(other, reference) > 0.1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_builtin_layers_match_the_reference_under_their_own_masks(rate, dtype):
    x, _, grad_out = make_case((64, 50), dtype, rate, seed=1)
    for name, (mask, result) in builtin_masks(x, rate, grad_out, seed=7).items():
        kept = mask.mean()
        assert abs(kept - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / mask.size), name
        reference = run_numpy(x, rate, mask, grad_out)
        assert max_relative_gap(result, reference) <= RTOL[np.dtype(dtype)], name
        assert result.output.dtype == dtype and result.grad.dtype == dtype, name


def test_bad_cases_are_rejected():
    x, keep_mask, grad_out = make_case((4, 4), np.float32, 0.5)
    with pytest.raises(ValueError, match="keep_mask"):
        run_all(x, 0.5, keep_mask.astype(np.float32), grad_out)
    with pytest.raises(ValueError, match="keep_mask"):
        run_all(x, 0.5, keep_mask[:2], grad_out)
    with pytest.raises(ValueError, match="grad_out"):
        run_all(x, 0.5, keep_mask, grad_out.astype(np.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        run_all(x.astype(np.float16), 0.5, keep_mask, grad_out.astype(np.float16))
    with pytest.raises(ValueError, match="rate"):
        run_all(x, 1.0, keep_mask, grad_out)
    with pytest.raises(ValueError, match="no zeros"):
        builtin_masks(np.zeros((3, 3), np.float32), 0.5, np.ones((3, 3), np.float32))
    with pytest.raises(ValueError, match="not among"):
        agreement_table({"NumPy": Result(x, x)}, reference="JAX")
