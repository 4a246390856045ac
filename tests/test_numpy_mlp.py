"""The NumPy MLP: layer gradients, the loss, training on blobs, reproducibility, dtypes and bad input."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from utils.dropout import Dropout
from utils.gradcheck import numerical_gradient, numerical_gradient_array, relative_error
from utils.numpy_mlp import SGD, Linear, NumpyMLP, ReLU, evaluate, softmax_cross_entropy, train_numpy_mlp
from utils.plotting import plot_history


def test_linear_and_relu_backward_match_finite_differences():
    rng = np.random.default_rng(0)
    x, grad_out = rng.normal(size=(4, 3)), rng.normal(size=(4, 5))
    layer = Linear(3, 5, rng, np.float64)
    layer.b[:] = rng.normal(size=5)
    layer.forward(x)
    grad_x = layer.backward(grad_out)
    assert relative_error(grad_x, numerical_gradient_array(layer.forward, x, grad_out)) < 1e-8
    def loss() -> float:
        return float(np.sum(layer.forward(x) * grad_out))
    assert relative_error(layer.grad_W, numerical_gradient(lambda _: loss(), layer.W)) < 1e-8
    assert relative_error(layer.grad_b, numerical_gradient(lambda _: loss(), layer.b)) < 1e-8
    relu = ReLU()
    away_from_zero = x + np.sign(x) * 0.1  # central differences across the kink would be wrong
    relu.forward(away_from_zero)
    grad_in = relu.backward(grad_out[:, :3])
    assert relative_error(grad_in, numerical_gradient_array(relu.forward, away_from_zero, grad_out[:, :3])) < 1e-8


def test_softmax_cross_entropy_value_and_gradient():
    logits = np.array([[0.0, 0.0], [1000.0, 0.0]])  # the second row would overflow a naive exp
    loss, grad = softmax_cross_entropy(logits, np.array([0, 1]))
    assert loss == pytest.approx((np.log(2) + 1000.0) / 2)
    assert np.all(np.isfinite(grad))
    rng = np.random.default_rng(1)
    logits, labels = rng.normal(size=(6, 4)), rng.integers(0, 4, 6)
    _, grad = softmax_cross_entropy(logits, labels)
    numeric = numerical_gradient(lambda v: softmax_cross_entropy(v, labels)[0], logits)
    assert relative_error(grad, numeric) < 1e-7


def test_whole_network_gradient_with_fixed_dropout_masks():
    rng = np.random.default_rng(2)
    model = NumpyMLP([6, 8, 7, 3], drop_rate=0.5, input_drop_rate=0.2, seed=3, dtype=np.float64)
    x, y = rng.normal(size=(5, 6)), rng.integers(0, 3, 5)
    for layer in model.linear_layers:  # zero biases put a ReLU exactly on its kink when a row is all dropped
        layer.b[:] = rng.normal(size=layer.b.shape)
    model.forward(x)
    masks = [layer.mask.copy() for layer in model.dropout_layers]
    assert len(masks) == 3
    _, grad = softmax_cross_entropy(model.forward(x, masks=masks), y)
    model.backward(grad)
    for param, analytic in model.parameters():
        numeric = numerical_gradient(lambda _: softmax_cross_entropy(model.forward(x, masks=masks), y)[0], param)
        assert relative_error(analytic, numeric) < 1e-6


def test_training_learns_blobs_and_returns_a_plottable_history(blobs):
    x, y = blobs(300, 5, seed=0)
    model = NumpyMLP([5, 16, 3], drop_rate=0.3, seed=0)
    history = train_numpy_mlp(model, (x[:200], y[:200]), (x[200:], y[200:]), epochs=5, batch_size=32, lr=0.05)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 5 for values in history.values())
    assert history["val_accuracy"][-1] > 0.9 and history["loss"][-1] < history["loss"][0]
    assert not model.training and not any(layer.training for layer in model.dropout_layers)
    plot_history(history)
    no_val = train_numpy_mlp(NumpyMLP([5, 16, 3]), (x, y), epochs=2)
    assert set(no_val) == {"loss", "accuracy"}


def test_training_restores_the_blas_thread_count(blobs):
    x, y = blobs(100, 5, seed=2)
    before = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    train_numpy_mlp(NumpyMLP([5, 8, 3]), (x, y), epochs=1)
    assert [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"] == before


def test_equal_seeds_give_identical_runs(blobs):
    x, y = blobs(200, 5, seed=1)
    runs = [train_numpy_mlp(NumpyMLP([5, 12, 3], drop_rate=0.5, seed=7), (x, y), epochs=3, seed=2)
            for _ in range(2)]
    assert runs[0] == runs[1]
    other = train_numpy_mlp(NumpyMLP([5, 12, 3], drop_rate=0.5, seed=8), (x, y), epochs=3, seed=2)
    assert other != runs[0]


def test_the_dropout_rates_do_not_change_the_initial_weights():
    plain, dropped = NumpyMLP([6, 5, 4, 3], seed=4), NumpyMLP([6, 5, 4, 3], drop_rate=0.5, input_drop_rate=0.2, seed=4)
    for a, b in zip(plain.parameters(), dropped.parameters()):
        np.testing.assert_array_equal(a[0], b[0])


def test_structure_modes_and_dtypes(blobs):
    model = NumpyMLP([4, 6, 6, 2], drop_rate=0.5, input_drop_rate=0.1)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert "Linear(4, 6)" in repr(model)
    assert [type(layer).__name__ for layer in NumpyMLP([4, 6, 2]).layers] == ["Linear", "ReLU", "Linear"]
    x = np.ones((3, 4), dtype=np.float32)
    assert model(x).dtype == np.float32
    model.eval()
    assert all(not layer.training for layer in model.dropout_layers)
    np.testing.assert_array_equal(model(x), model(x))  # no randomness in eval mode
    model.train()
    assert all(layer.training for layer in model.dropout_layers)
    x64, y = blobs(20, 4, seed=0)
    model64 = NumpyMLP([4, 6, 3], dtype=np.float64)
    assert model64(x64.astype(np.float64)).dtype == np.float64
    loss, accuracy = evaluate(model64, x64, y)  # evaluate converts the inputs
    assert np.isfinite(loss) and 0 <= accuracy <= 1 and model64.training


def test_sgd_with_momentum_follows_the_pytorch_rule():
    param, grad = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    optimizer = SGD([(param, grad)], lr=0.1, momentum=0.9)
    optimizer.step()
    np.testing.assert_allclose(param, [0.95, 2.1])
    optimizer.step()  # velocity 0.9 g + g
    np.testing.assert_allclose(param, [0.95 - 0.1 * 1.9 * 0.5, 2.1 + 0.1 * 1.9])


def test_bad_input_gets_clear_errors(blobs):
    x, y = blobs(20, 4, seed=0)
    x = x.astype(np.float32)
    model = NumpyMLP([4, 6, 3])
    with pytest.raises(ValueError, match="sizes"):
        NumpyMLP([4])
    with pytest.raises(ValueError, match="layer size"):
        NumpyMLP([4, 0, 3])
    with pytest.raises(ValueError, match="rate"):
        NumpyMLP([4, 6, 3], drop_rate=1.0)
    with pytest.raises(TypeError, match="dtype"):
        NumpyMLP([4, 6, 3], dtype=np.int32)
    with pytest.raises(ValueError, match="shape"):
        model(np.ones((2, 5), dtype=np.float32))
    with pytest.raises(TypeError, match="dtype"):
        model(np.ones((2, 4)))
    with pytest.raises(ValueError, match="one mask per Dropout layer"):
        NumpyMLP([4, 6, 3], drop_rate=0.5)(x, masks=[])
    with pytest.raises(ValueError, match="labels"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="labels"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0]))
    with pytest.raises(TypeError, match="logits"):
        softmax_cross_entropy(np.zeros(3), np.array([0]))
    with pytest.raises(ValueError, match="lr"):
        SGD(model.parameters(), lr=0.0)
    with pytest.raises(ValueError, match="momentum"):
        SGD(model.parameters(), lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="epochs"):
        train_numpy_mlp(model, (x, y), epochs=0)
    with pytest.raises(ValueError, match="labels"):
        train_numpy_mlp(model, (x, y[:-1]), epochs=1)
    with pytest.raises(TypeError, match="NumpyMLP"):
        train_numpy_mlp(Dropout(0.5), (x, y), epochs=1)
    with pytest.raises(RuntimeError, match="before forward"):
        Linear(2, 2, np.random.default_rng(0)).backward(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="before forward"):
        ReLU().backward(np.ones(2))
