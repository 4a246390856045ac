"""Tests for utils.chapters.relatives: DropConnect's layer, gradients and inference, Gaussian and alpha dropout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from utils.chapters.relatives import (
    DropConnectLinear,
    DropConnectMLP,
    GaussianDropout,
    TorchDropConnectLinear,
    TorchGaussianDropout,
    alpha_dropout_affine,
    dropconnect_gradient_errors,
    gaussian_dropout_std,
    last_layer_inputs,
    make_mlp,
    mask_average,
    moment_matched_inference,
    multipliers,
    preactivation_moments,
    sample_moments,
    selu,
    selu_stack_moments,
    softmax,
    true_minus,
)
from utils.dropout import Dropout
from utils.gradcheck import numerical_gradient_array, relative_error
from utils.numpy_mlp import Linear, NumpyMLP, train_numpy_mlp


def _layer(rate: float = 0.5, n_in: int = 5, n_out: int = 4) -> DropConnectLinear:
    layer = DropConnectLinear(n_in, n_out, rate, np.random.default_rng(0), seed=1)
    layer.b[...] = np.random.default_rng(4).standard_normal(n_out)
    return layer


def _batch(rows: int = 3, cols: int = 5, seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, cols))


def test_gradients_match_central_differences_for_x_w_and_b():
    layer, x, grad = _layer(), _batch(), _batch(3, 4, seed=3)
    layer.forward(x)
    mask = layer.mask.copy()
    grad_x = layer.backward(grad)
    assert relative_error(grad_x, numerical_gradient_array(lambda v: layer.forward(v, mask=mask), x, grad)) < 1e-7
    layer.forward(x, mask=mask)
    layer.backward(grad)
    grad_w, grad_b = layer.grad_W.copy(), layer.grad_b.copy()

    def with_weights(w):
        layer.W = w
        return layer.forward(x, mask=mask)

    assert relative_error(grad_w, numerical_gradient_array(with_weights, layer.W.copy(), grad)) < 1e-7

    def with_bias(b):
        layer.b = b
        return layer.forward(x, mask=mask)

    assert relative_error(grad_b, numerical_gradient_array(with_bias, layer.b.copy(), grad)) < 1e-7


def test_each_example_gets_its_own_mask_and_the_kept_weights_are_scaled():
    layer = _layer(rate=0.25)
    x = np.ones((2, 5))
    layer.forward(x)
    mask = layer.mask
    assert mask.shape == (2, 5, 4) and not np.array_equal(mask[0], mask[1])
    expected = np.stack([x[i] @ (mask[i] * layer.W) / 0.75 + layer.b for i in range(2)])
    assert np.allclose(layer.forward(x, mask=mask), expected)
    assert layer.draws_per_example() == 20


def test_evaluation_mode_and_rate_zero_use_the_mean_weights():
    layer, x = _layer(), _batch()
    assert np.allclose(layer.eval().forward(x), x @ layer.W + layer.b)
    assert np.allclose(_layer(rate=0.0).forward(x), x @ _layer(rate=0.0).W + _layer(rate=0.0).b)
    layer.forward(x)
    assert np.allclose(layer.backward(np.ones((3, 4))), np.ones((3, 4)) @ layer.W.T)


def test_dropout_on_the_inputs_is_dropconnect_with_whole_rows_masked():
    layer, x = _layer(), _batch()
    dropout = Dropout(0.5, seed=7)
    dropped = dropout.forward(x)
    rows = np.repeat(dropout.mask[:, :, None], 4, axis=2)
    plain = Linear(5, 4, np.random.default_rng(0), np.float64)
    plain.W, plain.b = layer.W, layer.b
    assert np.allclose(layer.forward(x, mask=rows), plain.forward(dropped))


def test_the_mask_average_approaches_the_moments():
    layer, x = _layer(), _batch(2)
    mean, variance = preactivation_moments(layer, x)
    samples = np.stack([layer.forward(x) for _ in range(20_000)])
    assert np.allclose(samples.mean(axis=0), mean, atol=6 * np.sqrt(variance.max() / 20_000))
    assert np.allclose(samples.var(axis=0), variance, rtol=0.05)


def test_inference_rules_agree_on_a_linear_activation_and_differ_from_each_other_by_little():
    layer, x = _layer(), _batch()
    identity = moment_matched_inference(layer, x, lambda u: u, n_samples=4000)
    assert np.allclose(identity, x @ layer.W + layer.b, atol=0.15)
    probs = mask_average(layer, x, softmax, n_masks=2000)
    gaussian = moment_matched_inference(layer, x, softmax, n_samples=2000)
    assert np.allclose(probs.sum(axis=1), 1) and np.abs(probs - gaussian).max() < 0.05
    assert layer.training and layer.mask is None  # untouched by the averages


def test_bad_input_gives_clear_errors():
    layer = _layer()
    with pytest.raises(ValueError, match="shape"):
        layer.forward(_batch(3, 6))
    with pytest.raises(TypeError, match="floating"):
        layer.forward(np.ones((3, 5), dtype=int))
    with pytest.raises(ValueError, match="boolean array"):
        layer.forward(_batch(), mask=np.ones((3, 5), dtype=bool))
    with pytest.raises(RuntimeError, match="before forward"):
        _layer().backward(np.ones((3, 4)))
    layer.forward(_batch())
    with pytest.raises(ValueError, match="grad_out"):
        layer.backward(np.ones((2, 4)))
    with pytest.raises(ValueError, match="drop rate"):
        _layer(rate=1.0)
    with pytest.raises(TypeError, match="DropConnectLinear"):
        preactivation_moments(Linear(5, 4, np.random.default_rng(0)), _batch())
    with pytest.raises(TypeError, match="callable"):
        mask_average(layer, _batch(), "softmax", n_masks=3)
    with pytest.raises(ValueError, match="n_samples"):
        moment_matched_inference(layer, _batch(), softmax, n_samples=0)


def test_make_mlp_builds_each_method_from_the_same_weights():
    sizes = [6, 8, 8, 3]
    nets = {method: make_mlp(sizes, method, 0.0 if method == "none" else 0.5, seed=3)
            for method in ("none", "dropout", "dropconnect")}
    assert isinstance(nets["dropconnect"], DropConnectMLP) and len(nets["dropconnect"].dropconnect_layers) == 2
    assert len(nets["dropout"].dropout_layers) == 2
    for net in nets.values():
        assert all(np.array_equal(a.W, b.W) for a, b in zip(net.linear_layers, nets["none"].linear_layers))
    assert all(not layer.training for layer in nets["dropconnect"].eval().dropconnect_layers)
    x = np.random.default_rng(1).random((4, 6)).astype(np.float32)
    net = nets["dropconnect"].train()
    hidden = last_layer_inputs(net, x)
    assert hidden.shape == (4, 8) and net.training
    assert np.allclose(net.eval().forward(x), hidden @ net.layers[-1].W + net.layers[-1].b, atol=1e-5)
    assert np.allclose(softmax(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])
    with pytest.raises(TypeError, match="NumpyMLP"):
        last_layer_inputs("net", x)
    with pytest.raises(ValueError, match="'none'"):
        make_mlp(sizes, "none", 0.5)
    with pytest.raises(ValueError, match="method must be"):
        make_mlp(sizes, "dropblock", 0.5)


def test_a_dropconnect_mlp_trains():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    net = make_mlp([4, 16, 2], "dropconnect", 0.3, seed=0)
    history = train_numpy_mlp(net, (x, y), epochs=15, batch_size=10, lr=0.1, seed=0)
    assert history["accuracy"][-1] > 0.85 and isinstance(net, NumpyMLP)


def test_gaussian_dropout_layer_scales_forward_and_backward_by_the_same_factors():
    layer = GaussianDropout(0.3, seed=1)
    x = _batch(4, 5)
    out = layer.forward(x)
    factors = out / x
    assert np.allclose(layer.backward(np.ones_like(x)), factors) and not np.allclose(factors, 1.0)
    many = GaussianDropout(0.3, seed=2).forward(np.ones((200, 500)))
    assert abs(many.std() - gaussian_dropout_std(0.3)) < 0.01 and abs(many.mean() - 1) < 0.01
    assert layer.eval().forward(x) is x
    with pytest.raises(TypeError, match="no mask"):
        layer.forward(x, mask=np.ones(x.shape, dtype=bool))
    net = make_mlp([6, 8, 8, 3], "gaussian", 0.5, seed=0)
    plain = make_mlp([6, 8, 8, 3], "dropout", 0.5, seed=0)
    assert sum(isinstance(layer, GaussianDropout) for layer in net.layers) == 2
    assert all(np.array_equal(a.W, b.W) for a, b in zip(net.linear_layers, plain.linear_layers))
    xs = np.random.default_rng(0).standard_normal((60, 6)).astype(np.float32)
    ys = (xs[:, 0] > 0).astype(np.int64)
    history = train_numpy_mlp(net, (xs, ys), epochs=15, batch_size=10, lr=0.1, seed=0)
    assert np.isfinite(history["loss"][-1])


def test_gaussian_dropout_matches_bernoulli_mean_and_variance():
    assert gaussian_dropout_std(0.5) == 1.0 and np.isclose(gaussian_dropout_std(0.2), 0.5)
    for rate in (0.2, 0.5):
        for kind in ("bernoulli", "gaussian"):
            moments = sample_moments(multipliers(kind, rate, 100_000, seed=1))
            assert abs(moments["mean"] - 1) < 5 * moments["mean_se"]
            assert abs(moments["variance"] - rate / (1 - rate)) < 5 * moments["variance_se"]
    assert (multipliers("bernoulli", 0.5, 100) == 0).any() and (multipliers("gaussian", 0.5, 100) != 0).all()
    with pytest.raises(ValueError, match="kind"):
        multipliers("uniform", 0.5, 10)
    with pytest.raises(ValueError, match="two finite"):
        sample_moments(np.array([1.0]))


def test_alpha_dropout_keeps_mean_zero_and_variance_one():
    saturation, a, b = alpha_dropout_affine(0.1)
    assert np.isclose(saturation, -1.7580993408473766)
    assert np.isclose(saturation, selu(np.array([-50.0]))[0])
    keep = 0.9  # inputs of mean 0, variance 1: the dropped share sits at the saturation value
    mean = a * (keep * 0 + 0.1 * saturation) + b
    second = a**2 * (keep * 1 + 0.1 * saturation**2) + 2 * a * b * 0.1 * saturation + b**2
    assert np.isclose(mean, 0) and np.isclose(second - mean**2, 1)


def test_the_selu_stack_drifts_with_dropout_and_not_with_alpha_dropout():
    runs = {noise: selu_stack_moments(noise, 0.2, depth=12, width=64, n=500) for noise in
            ("none", "dropout", "alpha dropout")}
    assert abs(runs["alpha dropout"]["variance"][-1] - 1) < 0.15
    assert runs["dropout"]["variance"][-1] > 1.3
    assert np.array_equal(selu_stack_moments("none", 0.2, depth=3, width=8, n=20)["variance"],
                          selu_stack_moments("none", 0.2, depth=3, width=8, n=20)["variance"])
    with pytest.raises(ValueError, match="noise must be"):
        selu_stack_moments("gaussian", 0.2)


def test_dropconnect_gradient_errors_are_small_and_restore_the_layer():
    layer = _layer()
    weights, bias = layer.W.copy(), layer.b.copy()
    errors = dropconnect_gradient_errors(layer, _batch(), _batch(3, 4, seed=5))
    assert set(errors) == {"x", "W", "b"} and max(errors.values()) < 1e-7
    assert np.array_equal(layer.W, weights) and np.array_equal(layer.b, bias)
    with pytest.raises(ValueError, match="training mode"):
        dropconnect_gradient_errors(_layer().eval(), _batch(), _batch(3, 4))
    with pytest.raises(TypeError, match="DropConnectLinear"):
        dropconnect_gradient_errors(Linear(5, 4, np.random.default_rng(0)), _batch(), _batch(3, 4))


def test_torch_gaussian_dropout_matches_moments_in_training_and_is_identity_in_eval():
    torch.manual_seed(0)
    layer = TorchGaussianDropout(0.3)
    x = torch.full((200_000,), 2.0, dtype=torch.float64)
    out = layer(x)
    assert abs(float(out.mean()) - 2.0) < 0.02
    assert abs(float(out.std()) - 2.0 * gaussian_dropout_std(0.3)) < 0.02
    assert torch.equal(layer.eval()(x), x)
    with pytest.raises(ValueError):
        TorchGaussianDropout(1.0)


def test_torch_dropconnect_linear_masks_weights_in_training_only():
    torch.manual_seed(0)
    layer = TorchDropConnectLinear(6, 3, 0.5)
    x = torch.randn(4, 6)
    plain = torch.nn.functional.linear(x, layer.weight, layer.bias)
    with torch.no_grad():
        draws = torch.stack([layer(x) for _ in range(4000)])
        assert torch.allclose(draws.mean(0), plain, atol=0.1)  # unbiased: mean weights
        assert not torch.allclose(draws[0], plain)
        assert torch.equal(layer.eval()(x), plain)
    # one mask per call: an example's output depends only on its own input and that mask
    layer.train()
    loss = layer(x).sum()
    loss.backward()
    assert layer.weight.grad is not None and (layer.weight.grad == 0).any()
    with pytest.raises(TypeError):
        TorchDropConnectLinear(6, 3, "0.5")


def test_true_minus_typesets_minus_signs_but_not_hyphens_or_negative_zero():
    assert true_minus("-0.3 to +0.4 points, cross-entropy") == "\u22120.3 to +0.4 points, cross-entropy"
    assert true_minus("p/(1-p) = -lambda, -0.00 to +1.2") == "p/(1\u2212p) = \u2212lambda, 0.00 to +1.2"
    with pytest.raises(TypeError, match="str"):
        true_minus(1.0)
