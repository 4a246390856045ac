"""NumPy, Keras and PyTorch dropout agree: same mask in, same outputs and input gradients out.

The first tests hold the book's three dropout layers to one another, shape by shape and dtype by dtype (the
chapter itself only uses the frameworks' own layers); the last ones check the chapter's porting helpers.
"""

import numpy as np
import pytest

from utils.chapters.three_frameworks import (
    PORT_RTOL,
    RTOL,
    Result,
    agreement_table,
    assert_agree,
    builtin_masks,
    keras_forward,
    keras_to_torch,
    largest_gap,
    lstm_input_masks,
    max_relative_gap,
    numpy_forward,
    run_all,
    run_numpy,
    torch_forward,
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


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_builtin_layers_match_the_reference_bit_for_bit_in_float32(rate):
    """The chapter's table: same bits as NumPy, also where 1/(1 - p) is not exact in binary."""
    x, _, grad_out = make_case((40, 40), np.float32, rate, seed=2)
    for name, (mask, result) in builtin_masks(x, rate, grad_out, seed=3).items():
        reference = run_numpy(x, rate, mask, grad_out)
        assert np.array_equal(result.output, reference.output), name
        assert np.array_equal(result.grad, reference.grad), name
    if rate != 0.5:  # dividing by 1 - p instead would change some last bits
        assert not np.array_equal(x / np.float32(1 - rate), x * np.float32(1 / (1 - rate)))


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


# The porting helpers of the chapter: a Keras MLP copied into PyTorch and NumPy.


def _models(rate: float, sizes=(6, 5, 5, 3)):
    """A Keras and a PyTorch MLP of the chapter's layout (ReLU layers, each with dropout, then logits)."""
    import keras
    from torch import nn

    n_in, *hidden, n_out = sizes
    keras_layers, torch_layers, previous = [keras.Input((n_in,))], [], n_in
    for width in hidden:
        keras_layers += [keras.layers.Dense(width, activation="relu"), keras.layers.Dropout(rate)]
        torch_layers += [nn.Linear(previous, width), nn.ReLU(), nn.Dropout(rate)]
        previous = width
    keras_layers.append(keras.layers.Dense(n_out))
    torch_layers.append(nn.Linear(previous, n_out))
    return keras.Sequential(keras_layers), nn.Sequential(*torch_layers)


@pytest.mark.parametrize("rate", [0.3, 0.5])
def test_a_ported_mlp_agrees_in_inference_and_with_shared_masks(rate):
    keras_model, torch_model = _models(rate)
    keras_to_torch(keras_model, torch_model)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((17, 6)).astype(np.float32)
    weights = keras_model.get_weights()
    reference = keras_forward(keras_model, x)
    assert_agree(torch_forward(torch_model, x), reference)
    assert_agree(numpy_forward(weights, x, rate), reference)
    masks = [rng.random((17, 5)) >= rate for _ in range(2)]
    trained = keras_forward(keras_model, x, masks)
    assert_agree(torch_forward(torch_model, x, masks), trained)
    assert_agree(numpy_forward(weights, x, rate, masks), trained)
    # the NumPy copy is pinned to the formula, not only to the other two
    (k1, b1, k2, b2, k3, b3) = weights
    h = np.maximum(x @ k1 + b1, 0) * masks[0] / (1 - rate)
    h = np.maximum(h @ k2 + b2, 0) * masks[1] / (1 - rate)
    assert_agree(trained, h @ k3 + b3)


def test_forgetting_the_transpose_fails_loudly_or_silently():
    keras_model, torch_model = _models(0.3)
    with pytest.raises(RuntimeError):  # the first layer is 6 -> 5: shapes do not fit
        keras_to_torch(keras_model, torch_model, transpose=False)
    square_keras, square_torch = _models(0.3, sizes=(4, 4, 4, 4))
    keras_to_torch(square_keras, square_torch, transpose=False)  # no error
    x = np.random.default_rng(0).standard_normal((9, 4)).astype(np.float32)
    with pytest.raises(AssertionError, match="differ"):
        assert_agree(torch_forward(square_torch, x), keras_forward(square_keras, x))


def test_the_copy_needs_matching_layers():
    keras_model, _ = _models(0.3)
    _, other = _models(0.3, sizes=(6, 5, 3))
    with pytest.raises(ValueError, match="Dense"):
        keras_to_torch(keras_model, other)


def test_assert_agree_states_its_tolerance_in_one_line():
    a = np.ones(10, np.float32)
    assert_agree(a * (1 + PORT_RTOL / 2), a)
    with pytest.raises(AssertionError) as caught:
        assert_agree(a * (1 + 10 * PORT_RTOL), a, "logits")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("logits differ: 10 of 10")
    with pytest.raises(AssertionError, match="shapes"):
        assert_agree(a[:3], a)
    assert largest_gap(a * 1.5, a) == pytest.approx(0.5)


def test_lstm_input_masks_one_per_sequence_or_one_per_gate():
    from keras import layers

    sequence = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    lstm = layers.LSTM(6, dropout=0.3, seed=2)
    masks = lstm_input_masks(lstm, sequence)
    assert masks and all(np.array_equal(m, masks[0]) for m in masks)
    assert masks[0].shape == (1, 3, 5)
    assert "get_dropout_mask" not in vars(lstm.cell)  # the cell's own method again
    gates = lstm_input_masks(layers.LSTM(6, dropout=0.3, recurrent_dropout=0.1, seed=2), sequence)
    assert gates[0].shape == (4, 3, 5)
    with pytest.raises(ValueError, match="dropout > 0"):
        lstm_input_masks(layers.LSTM(6), sequence)
    with pytest.raises(ValueError, match="batch, time, features"):
        lstm_input_masks(lstm, sequence[0])
