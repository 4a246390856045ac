"""The PyTorch model builders: dropout where their docstrings put it, logits of the right shape, clear errors."""

import numpy as np
import pytest
import torch
from torch import nn

from utils.seeding import seed_everything
from utils.torch_models import make_cnn, make_mlp


def _kinds(model):
    return [type(layer).__name__ for layer in model]


def test_mlp_places_dropout_on_the_inputs_and_after_each_hidden_layer():
    model = make_mlp(5, [8, 6], 3, drop_rate=0.5, input_drop_rate=0.2)
    assert _kinds(model) == ["Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [layer.p for layer in model if isinstance(layer, nn.Dropout)] == [0.2, 0.5, 0.5]
    assert [(layer.in_features, layer.out_features) for layer in model if isinstance(layer, nn.Linear)] == [
        (5, 8), (8, 6), (6, 3)]
    assert model(torch.zeros(4, 5)).shape == (4, 3)


def test_mlp_rates_of_zero_leave_the_dropout_layers_out():
    assert _kinds(make_mlp(5, [8], 3)) == ["Linear", "ReLU", "Linear"]
    assert _kinds(make_mlp(5, [8], 3, input_drop_rate=0.2)) == ["Dropout", "Linear", "ReLU", "Linear"]
    assert _kinds(make_mlp(5, (), 3, drop_rate=0.5)) == ["Linear"]  # no hidden layer: nothing to drop after
    assert _kinds(make_mlp(np.int64(5), [np.int64(4)], 3)) == ["Linear", "ReLU", "Linear"]


def test_mlp_and_cnn_weights_follow_the_global_seed():
    first, second = [], []
    for draws in (first, second):
        seed_everything(3)
        draws += [make_mlp(5, [8], 3, drop_rate=0.5), make_cnn(10, drop_rate=0.5)]
    for a, b in zip(first, second, strict=True):
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("kwargs, error", [
    ({"n_in": 0}, ValueError),
    ({"n_out": 2.0}, TypeError),
    ({"hidden": [0]}, ValueError),
    ({"hidden": [2.5]}, TypeError),
    ({"hidden": 4}, TypeError),
    ({"hidden": "44"}, TypeError),
    ({"drop_rate": 1.0}, ValueError),
    ({"input_drop_rate": -0.1}, ValueError),
    ({"drop_rate": "0.5"}, TypeError),
])
def test_mlp_rejects_bad_arguments_clearly(kwargs, error):
    arguments = {"n_in": 5, "hidden": [4], "n_out": 3} | kwargs
    name = next(iter(kwargs))
    with pytest.raises(error, match="rate" if "rate" in name else name):
        make_mlp(**arguments)


def test_cnn_takes_flat_rows_and_drops_only_before_its_last_layer():
    model = make_cnn(7, drop_rate=0.4)
    assert model(torch.rand(12, 784)).shape == (12, 7)
    assert isinstance(model[-2], nn.Dropout) and model[-2].p == 0.4
    assert sum(isinstance(layer, nn.Dropout) for layer in model) == 1
    assert isinstance(model[2], nn.BatchNorm2d)  # batch norm by default, after the first convolution


def test_cnn_options():
    assert not any(isinstance(layer, (nn.Dropout, nn.BatchNorm2d)) for layer in make_cnn(10, batch_norm=False))
    assert make_cnn(2, batch_norm=False)(torch.rand(3, 784)).shape == (3, 2)


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((1,), {}, ValueError, "n_classes"),
    (("10",), {}, TypeError, "n_classes"),
    ((10,), {"drop_rate": 1.0}, ValueError, "rate"),
    ((10,), {"batch_norm": 1}, TypeError, "batch_norm"),
])
def test_cnn_rejects_bad_arguments_clearly(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_cnn(*args, **kwargs)


def test_builders_take_their_rates_by_name_only():
    with pytest.raises(TypeError):
        make_mlp(5, [4], 3, 0.5)
    with pytest.raises(TypeError):
        make_cnn(10, 0.5)
