"""Dropout scaled right and wrong: each correct variant matches nn.Dropout, each mistake is wrong as the book claims."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.chapters.inverted_scaling import (
    SCHEMES,
    ForgetfulDropout,
    FunctionalDropout,
    ScaledDropout,
    input_mean_ratios,
    right_answers,
    standard_lr_groups,
    swap_dropout,
    with_scheme,
)
from utils.torch_models import make_mlp


def _model(seed=0, drop_rate=0.5, input_drop_rate=0.2):
    torch.manual_seed(seed)
    return make_mlp(6, [16, 16], 3, drop_rate=drop_rate, input_drop_rate=input_drop_rate)


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, size=(n, 6)).astype(np.float32), rng.integers(0, 3, n)


def _outputs(model, x, seed=None):
    with torch.no_grad():
        if seed is not None:
            torch.manual_seed(seed)
        return model(torch.as_tensor(x))


def test_scaled_dropout_draws_nn_dropouts_mask_and_applies_its_scales():
    x = torch.rand(2000) + 0.5
    torch.manual_seed(3)
    reference = nn.Dropout(0.3)(x)
    layer = ScaledDropout(0.3, train_scale=2.0, test_scale=0.25)
    torch.manual_seed(3)
    out = layer(x)
    torch.testing.assert_close(out > 0, reference > 0)  # the same units survive
    torch.testing.assert_close(out[out > 0], 2.0 * x[out > 0])
    torch.testing.assert_close(layer.eval()(x), 0.25 * x)
    assert "train_scale=2" in repr(layer)


def test_scaled_dropout_with_rate_zero_keeps_every_unit():
    x = torch.rand(100)
    torch.testing.assert_close(ScaledDropout(0.0, train_scale=1.0, test_scale=1.0)(x), x)


@pytest.mark.parametrize("kwargs, error", [
    ({"p": 1.0, "train_scale": 1.0, "test_scale": 1.0}, ValueError),
    ({"p": 0.5, "train_scale": 0.0, "test_scale": 1.0}, ValueError),
    ({"p": 0.5, "train_scale": 1.0, "test_scale": -1.0}, ValueError),
    ({"p": 0.5, "train_scale": float("inf"), "test_scale": 1.0}, ValueError),
    ({"p": 0.5, "train_scale": "2", "test_scale": 1.0}, TypeError),
    ({"p": 0.5, "train_scale": 1.0, "test_scale": True}, TypeError),
])
def test_scaled_dropout_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        ScaledDropout(**kwargs)


def test_functional_dropout_modules_reject_bad_rates():
    for layer in (ForgetfulDropout, FunctionalDropout):
        with pytest.raises(ValueError, match="rate"):
            layer(1.0)


def test_inverted_scheme_is_nn_dropout_in_both_modes():
    model, (x, _) = _model(), _data()
    inverted = with_scheme(model, "inverted")
    torch.testing.assert_close(_outputs(inverted.eval(), x), _outputs(model.eval(), x))
    torch.testing.assert_close(_outputs(inverted.train(), x, seed=1), _outputs(model.train(), x, seed=1))


def test_standard_scheme_computes_the_same_function_after_reparametrisation():
    model, (x, _) = _model(), _data()
    standard = with_scheme(model, "standard")
    torch.testing.assert_close(_outputs(standard.eval(), x), _outputs(model.eval(), x))
    torch.testing.assert_close(_outputs(standard.train(), x, seed=2), _outputs(model.train(), x, seed=2))
    # the weights after dropout were divided by the keep probability; the original model is untouched
    torch.testing.assert_close(standard[1].weight, model[1].weight / 0.8)
    torch.testing.assert_close(standard[4].weight, model[4].weight / 0.5)
    assert isinstance(model[0], nn.Dropout)


def test_scaling_by_the_rate_is_wrong_unless_the_rate_is_one_half():
    x = _data()[0]
    wrong = with_scheme(_model(), "rate_at_test").eval()
    assert input_mean_ratios(wrong, x, passes=50)[0] == pytest.approx(0.2 / 0.8, rel=0.03)
    hidden_only = _model(input_drop_rate=0.0)  # every dropout layer at 0.5: rate and keep probability coincide
    torch.testing.assert_close(_outputs(with_scheme(hidden_only, "rate_at_test").eval(), x),
                               _outputs(hidden_only.eval(), x))


def test_scaling_twice_shrinks_the_first_layers_input_by_the_keep_probability():
    x = _data()[0]
    ratios = input_mean_ratios(with_scheme(_model(), "scaled_twice"), x, passes=50)
    assert ratios[0] == pytest.approx(0.8, rel=0.03)
    assert ratios[1] < 0.8  # errors compound with depth


def test_unscaled_standard_dropout_inflates_test_inputs_by_one_over_keep():
    x = _data()[0]
    ratios = input_mean_ratios(with_scheme(_model(), "unscaled_standard"), x, passes=50)
    assert ratios[0] == pytest.approx(1 / 0.8, rel=0.03)


def test_unknown_schemes_are_rejected():
    assert set(SCHEMES) == {"inverted", "standard", "rate_at_test", "scaled_twice", "unscaled_standard"}
    with pytest.raises(ValueError, match="unknown scheme"):
        with_scheme(_model(), "upside_down")


def test_forgetful_dropout_stays_on_after_eval_and_the_fix_turns_off():
    model, (x, _) = _model(), _data()
    forgetful = swap_dropout(model, ForgetfulDropout).eval()
    assert not torch.equal(_outputs(forgetful, x), _outputs(forgetful, x))
    fixed = swap_dropout(model, FunctionalDropout)
    torch.testing.assert_close(_outputs(fixed.eval(), x), _outputs(model.eval(), x))
    torch.testing.assert_close(_outputs(fixed.train(), x, seed=4), _outputs(model.train(), x, seed=4))


def test_swap_dropout_copies_and_rescales_only_when_asked():
    model = _model()
    same = swap_dropout(model, nn.Dropout)
    torch.testing.assert_close(same[1].weight, model[1].weight)
    assert same[1].weight is not model[1].weight
    halved = swap_dropout(_model(input_drop_rate=0.0), nn.Dropout, rescale_next=True)
    torch.testing.assert_close(halved[3].weight, _model(input_drop_rate=0.0)[3].weight / 0.5)


def test_swap_dropout_rejects_models_it_cannot_handle():
    with pytest.raises(TypeError, match="nn.Sequential"):
        swap_dropout(nn.Linear(2, 2), nn.Dropout)
    with pytest.raises(ValueError, match="no nn.Dropout"):
        swap_dropout(nn.Sequential(nn.Linear(2, 2)), nn.Dropout)
    with pytest.raises(ValueError, match="no Linear layer after it"):
        swap_dropout(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), nn.Dropout, rescale_next=True)


def test_standard_lr_groups_make_standard_dropout_retrace_an_inverted_run():
    x, y = (torch.as_tensor(a) for a in _data())
    start = _model(seed=5)
    inverted, matched, naive = copy.deepcopy(start), with_scheme(start, "standard"), with_scheme(start, "standard")
    optimizers = [torch.optim.SGD(inverted.parameters(), lr=0.1, momentum=0.9),
                  torch.optim.SGD(standard_lr_groups(matched, 0.1), momentum=0.9),
                  torch.optim.SGD(naive.parameters(), lr=0.1, momentum=0.9)]
    for step in range(15):
        for net, optimizer in zip((inverted, matched, naive), optimizers, strict=True):
            torch.manual_seed(step)  # the same masks in every network
            optimizer.zero_grad()
            F.cross_entropy(net.train()(x), y).backward()
            optimizer.step()
    reference = _outputs(inverted.eval(), x)
    torch.testing.assert_close(_outputs(matched.eval(), x), reference, rtol=1e-4, atol=1e-4)
    assert (_outputs(naive.eval(), x) - reference).abs().max() > 1e-2


def test_standard_lr_groups_cover_every_parameter_once_and_check_their_input():
    model = with_scheme(_model(), "standard")
    groups = standard_lr_groups(model, 0.1)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert sorted({round(g["lr"], 6) for g in groups}) == [0.1, round(0.1 / 0.8**2, 6), round(0.1 / 0.5**2, 6)]
    with pytest.raises(ValueError, match="lr"):
        standard_lr_groups(model, 0.0)
    with pytest.raises(ValueError, match="no ScaledDropout layer"):
        standard_lr_groups(_model(), 0.1)  # nn.Dropout is inverted: nothing to convert


def test_input_mean_ratios_of_a_correct_model_start_at_one_and_restore_the_mode():
    model, (x, _) = _model(), _data()
    model.train()
    ratios = input_mean_ratios(model, x, passes=50)
    assert ratios.shape == (3,)
    assert ratios[0] == pytest.approx(1.0, abs=0.02)
    assert model.training
    with pytest.raises(ValueError, match="passes"):
        input_mean_ratios(model, x, passes=0)
    with pytest.raises(ValueError, match="no Linear"):
        input_mean_ratios(nn.Sequential(nn.ReLU()), x)
    with pytest.raises(TypeError):
        input_mean_ratios(nn.ReLU(), x)


def test_right_answers_marks_each_example_and_keeps_the_mode():
    model, (x, y) = _model(), _data()
    model.train()
    right = right_answers(model, x, y)
    assert model.training  # restored
    expected = _outputs(model.eval(), x).argmax(1).numpy() == y
    np.testing.assert_array_equal(right, expected)
    assert right.dtype == bool and right.shape == (len(y),)
    model.train()
    torch.manual_seed(3)
    noisy = right_answers(model, x, y, eval_mode=False)
    np.testing.assert_array_equal(noisy, _outputs(model, x, seed=3).argmax(1).numpy() == y)
    with pytest.raises(ValueError, match="labels"):
        right_answers(model, x, y[:10])
    with pytest.raises(ValueError, match="labels"):
        right_answers(model, x, y.astype(float))
    with pytest.raises(TypeError):
        right_answers("model", x, y)


def test_standard_lr_groups_power_one_retraces_an_adam_run():
    x, y = (torch.as_tensor(a) for a in _data())
    start = _model(seed=6)
    inverted, matched, naive = copy.deepcopy(start), with_scheme(start, "standard"), with_scheme(start, "standard")
    optimizers = [torch.optim.Adam(inverted.parameters(), lr=1e-3),
                  torch.optim.Adam(standard_lr_groups(matched, 1e-3, power=1)),
                  torch.optim.Adam(naive.parameters(), lr=1e-3)]
    for step in range(10):
        for net, optimizer in zip((inverted, matched, naive), optimizers, strict=True):
            torch.manual_seed(step)
            optimizer.zero_grad()
            F.cross_entropy(net.train()(x), y).backward()
            optimizer.step()
    start_out, reference = _outputs(start.eval(), x), _outputs(inverted.eval(), x)
    moved = (reference - start_out).norm()
    assert (_outputs(matched.eval(), x) - reference).norm() < 0.05 * moved
    assert (_outputs(naive.eval(), x) - reference).norm() > 0.1 * moved
    with pytest.raises(ValueError, match="power"):
        standard_lr_groups(matched, 1e-3, power=3)
