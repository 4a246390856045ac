"""Dropout as an ensemble: mask enumeration, exact and Monte-Carlo means, sub-network forward passes, closed forms,
and the reading of the stored Fig. 11 analogue."""

import copy

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from utils.chapters.ensemble import (
    arithmetic_mean,
    dropout_linreg_loss,
    dropout_linreg_solution,
    droppable_units,
    ensemble_means,
    enumerate_masks,
    largest_cdf_gap,
    mc_dropout_linreg_loss,
    mc_versus_scaling,
    monte_carlo_means,
    nwgm,
    plot_mc_against_scaling,
    sample_masks,
    settles_from,
    subnetwork_log_probs,
)
from utils.stats import paired_difference


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_layer(seed=0, n_in=6, n_out=4, n_examples=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_examples, n_in)), rng.normal(size=(n_out, n_in)), rng.normal(size=n_out)


# --- enumerate_masks and sample_masks ---------------------------------------------------


def test_enumeration_lists_every_mask_once_with_binomial_probabilities():
    masks, probs = enumerate_masks(4, 0.3)
    assert masks.shape == (16, 4) and masks.dtype == bool
    assert len({tuple(row) for row in masks}) == 16
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=0, atol=1e-15)
    kept = masks.sum(axis=1)
    np.testing.assert_allclose(probs, 0.3**kept * 0.7 ** (4 - kept))
    np.testing.assert_allclose(probs @ masks, [0.3] * 4)  # E[m_j] = keep probability


def test_enumeration_takes_one_keep_probability_per_unit():
    keep = np.array([0.2, 0.5, 0.9])
    masks, probs = enumerate_masks(3, keep)
    np.testing.assert_allclose(probs @ masks, keep)
    masks_all_kept, probs_all_kept = enumerate_masks(2, 1.0)  # keep everything: one mask has all the mass
    assert probs_all_kept[masks_all_kept.all(axis=1)] == pytest.approx(1.0)


@pytest.mark.parametrize("n_units, keep, error", [
    (0, 0.5, ValueError), (25, 0.5, ValueError), (2.0, 0.5, TypeError), (True, 0.5, TypeError),
    (3, 0.0, ValueError), (3, 1.5, ValueError), (3, -0.1, ValueError), (3, [0.5, 0.5], ValueError),
    (3, "0.5", TypeError), (3, True, TypeError), (3, float("nan"), ValueError),
])
def test_enumeration_rejects_bad_input(n_units, keep, error):
    with pytest.raises(error):
        enumerate_masks(n_units, keep)


def test_sampled_masks_keep_units_at_their_rates():
    masks = sample_masks(200_000, 2, [0.25, 0.8], np.random.default_rng(0))
    assert masks.shape == (200_000, 2) and masks.dtype == bool
    np.testing.assert_allclose(masks.mean(axis=0), [0.25, 0.8], atol=0.005)
    with pytest.raises(ValueError):
        sample_masks(0, 2, 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError):
        sample_masks(5, 2, 0.0, np.random.default_rng(0))


# --- arithmetic mean and NWGM -----------------------------------------------------------


def test_means_of_identical_predictions_are_those_predictions():
    p = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    stacked = np.stack([p, p, p])
    np.testing.assert_allclose(arithmetic_mean(stacked), p)
    np.testing.assert_allclose(nwgm(stacked, np.array([0.5, 0.25, 0.25])), p)


def test_nwgm_of_two_predictions_by_hand():
    probs = np.array([[0.9, 0.1], [0.5, 0.5]])
    g = np.sqrt([0.9 * 0.5, 0.1 * 0.5])
    np.testing.assert_allclose(nwgm(probs), g / g.sum())
    np.testing.assert_allclose(arithmetic_mean(probs), [0.7, 0.3])
    np.testing.assert_allclose(nwgm(probs, np.array([1.0, 0.0])), [0.9, 0.1])  # weight 0 removes a member


def test_nwgm_of_softmax_sub_networks_is_the_weight_scaled_network():
    """Baldi and Sadowski: for a softmax layer the NWGM equals the net with inputs scaled by E[mask]."""
    x, weight, bias = _softmax_layer()
    masks, probs = enumerate_masks(6, [0.3, 0.5, 0.7, 0.9, 0.4, 0.6])
    outputs = _softmax((masks[:, None, :] * x) @ weight.T + bias)
    expected = _softmax((probs @ masks) * x @ weight.T + bias)
    np.testing.assert_allclose(nwgm(outputs, probs), expected, rtol=0, atol=1e-12)
    assert np.abs(arithmetic_mean(outputs, probs) - expected).max() > 1e-3


@pytest.mark.parametrize("probs, weights", [
    (np.ones((2, 3)) / 3, np.array([0.5, 0.4])),       # weights do not sum to 1
    (np.ones((2, 3)) / 3, np.array([1.5, -0.5])),      # negative weight
    (np.ones((2, 3)) / 3, np.array([1.0])),            # one weight for two members
    (np.ones((2, 1)), None),                           # a single class
    (np.ones(3) / 3, None),                            # nothing stacked
    (np.full((2, 2), 1.5), None),                      # not probabilities
    (np.full((2, 2), np.nan), None),
])
def test_means_reject_bad_input(probs, weights):
    with pytest.raises(ValueError):
        arithmetic_mean(probs, weights)
    with pytest.raises(ValueError):
        nwgm(probs, weights)


def test_ensemble_means_in_blocks_match_the_stacked_means():
    x, weight, bias = _softmax_layer(seed=1)
    masks, probs = enumerate_masks(6, 0.5)

    def log_probs(block):
        z = (block[:, None, :] * x) @ weight.T + bias
        return np.log(_softmax(z))

    stacked = np.exp(log_probs(masks))
    arithmetic, geometric = ensemble_means(log_probs, masks, probs, batch_size=7)
    np.testing.assert_allclose(arithmetic, arithmetic_mean(stacked, probs), rtol=0, atol=1e-14)
    np.testing.assert_allclose(geometric, nwgm(stacked, probs), rtol=0, atol=1e-14)
    with pytest.raises(ValueError):
        ensemble_means(log_probs, masks[0], None)
    with pytest.raises(ValueError):
        ensemble_means(lambda block: log_probs(block)[:1], masks, probs)
    with pytest.raises(ValueError):
        ensemble_means(log_probs, masks, probs, batch_size=0)


def test_monte_carlo_means_are_nested_and_converge_to_the_exact_means():
    x, weight, bias = _softmax_layer(seed=2)

    def log_probs(block):
        return np.log(_softmax((block[:, None, :] * x) @ weight.T + bias))

    masks, probs = enumerate_masks(6, 0.5)
    exact_arithmetic, exact_geometric = ensemble_means(log_probs, masks, probs)
    ks = [1, 10, 20_000]
    arithmetic, geometric = monte_carlo_means(log_probs, 6, 0.5, ks, np.random.default_rng(0), batch_size=999)
    assert arithmetic.shape == geometric.shape == (3, *exact_arithmetic.shape)
    first = np.exp(log_probs(sample_masks(1, 6, 0.5, np.random.default_rng(0))))[0]
    np.testing.assert_allclose(arithmetic[0], first)  # k = 1 is the first sampled sub-network
    np.testing.assert_allclose(geometric[0], first)
    assert np.abs(arithmetic[-1] - exact_arithmetic).max() < 0.01
    assert np.abs(geometric[-1] - exact_geometric).max() < 0.01
    for bad in ([], [0], [2.5]):
        with pytest.raises((ValueError, TypeError)):
            monte_carlo_means(log_probs, 6, 0.5, bad, np.random.default_rng(0))


# --- sub-networks of a PyTorch MLP ------------------------------------------------------


def _mlp(input_rate=0.0):
    torch.manual_seed(0)
    layers = [nn.Dropout(input_rate)] if input_rate else []
    layers += [nn.Linear(5, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 3), nn.ReLU(), nn.Dropout(0.25),
               nn.Linear(3, 2)]
    return nn.Sequential(*layers)


def test_droppable_units_counts_the_width_at_every_dropout_layer():
    assert droppable_units(_mlp()) == 4 + 3
    assert droppable_units(_mlp(input_rate=0.2)) == 5 + 4 + 3
    assert droppable_units(nn.Sequential(nn.Linear(5, 2))) == 0


def test_keep_probability_masks_give_the_eval_mode_network():
    model, x = _mlp(input_rate=0.2), np.random.default_rng(0).normal(size=(6, 5))
    keep = np.concatenate([np.full(5, 0.8), np.full(4, 0.5), np.full(3, 0.75)])
    ours = subnetwork_log_probs(model, x, keep[None])
    with torch.no_grad():
        theirs = torch.log_softmax(model.eval()(torch.tensor(x, dtype=torch.float32)), dim=1).double().numpy()
    assert ours.shape == (1, 6, 2)
    np.testing.assert_allclose(ours[0], theirs, atol=1e-5)


def test_a_dropped_unit_is_a_zeroed_column_and_kept_units_are_scaled():
    model, x = _mlp(), np.random.default_rng(1).normal(size=(6, 5))
    mask = np.array([[1, 0, 1, 1, 1, 1, 0]], dtype=bool)
    thinned = copy.deepcopy(nn.Sequential(*(layer for layer in model if not isinstance(layer, nn.Dropout))))
    with torch.no_grad():
        thinned[2].weight.mul_(torch.tensor([2.0, 0.0, 2.0, 2.0]))       # keep 1/(1 - 0.5), drop unit 2
        thinned[4].weight.mul_(torch.tensor([4 / 3, 4 / 3, 0.0]))         # keep 1/(1 - 0.25), drop unit 3
        expected = torch.log_softmax(thinned(torch.tensor(x, dtype=torch.float32)), dim=1).double().numpy()
    np.testing.assert_allclose(subnetwork_log_probs(model, x, mask)[0], expected, atol=1e-5)
    np.testing.assert_allclose(np.exp(subnetwork_log_probs(model, x, mask)).sum(-1), 1.0)


def test_subnetwork_log_probs_rejects_bad_input():
    model, x = _mlp(), np.ones((2, 5))
    with pytest.raises(ValueError, match="masks"):
        subnetwork_log_probs(model, x, np.ones((1, 6)))
    with pytest.raises(ValueError, match="x"):
        subnetwork_log_probs(model, np.ones(5), np.ones((1, 7)))
    with pytest.raises(TypeError):
        subnetwork_log_probs(nn.Sequential(nn.Linear(5, 2), nn.Tanh()), x, np.ones((1, 0)))
    with pytest.raises(TypeError):
        subnetwork_log_probs(nn.Linear(5, 2), x, np.ones((1, 0)))
    with pytest.raises(ValueError):
        droppable_units(nn.Sequential(nn.ReLU()))


# --- linear regression with dropped inputs ----------------------------------------------


def _regression(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(30, 3)) * [0.5, 1.0, 4.0]
    return x, x @ [1.0, -2.0, 0.5] + rng.normal(size=30), np.array([0.8, -1.5, 0.3])


@pytest.mark.parametrize("inverted", [True, False])
def test_closed_form_matches_exact_enumeration_over_masks(inverted):
    x, y, w = _regression()
    rate = 0.3
    # every mask of the 30 x 3 inputs is too many; the loss is a sum over rows, so enumerate each row's 8 masks
    masks, probs = enumerate_masks(3, 1 - rate)
    scale = 1 / (1 - rate) if inverted else 1.0
    exact = sum(probs @ (y_i - (masks * x_i) @ w * scale) ** 2 for x_i, y_i in zip(x, y))
    assert dropout_linreg_loss(x, y, w, rate, inverted=inverted) == pytest.approx(exact, rel=1e-12)


def test_monte_carlo_loss_agrees_with_the_closed_form():
    x, y, w = _regression()
    mean, sem = mc_dropout_linreg_loss(x, y, w, 0.4, 20_000, np.random.default_rng(0), batch_size=3000)
    assert abs(mean - dropout_linreg_loss(x, y, w, 0.4)) < 4 * sem
    assert sem > 0


def test_rate_zero_is_plain_least_squares():
    x, y, w = _regression()
    assert dropout_linreg_loss(x, y, w, 0.0) == pytest.approx(np.sum((y - x @ w) ** 2))
    np.testing.assert_allclose(dropout_linreg_solution(x, y, 0.0), np.linalg.lstsq(x, y, rcond=None)[0])


def test_solution_minimises_the_expected_loss_and_is_scale_equivariant():
    x, y, _ = _regression()
    w = dropout_linreg_solution(x, y, 0.3)
    h = 1e-5
    for j in range(3):
        step = np.eye(3)[j] * h
        slope = (dropout_linreg_loss(x, y, w + step, 0.3) - dropout_linreg_loss(x, y, w - step, 0.3)) / (2 * h)
        assert abs(slope) < 1e-5
    stretched = x * [10.0, 1.0, 0.1]
    np.testing.assert_allclose(stretched @ dropout_linreg_solution(stretched, y, 0.3), x @ w)


@pytest.mark.parametrize("args, error", [
    ((np.ones((4, 2)), np.ones(3), np.ones(2), 0.5), ValueError),
    ((np.ones((4, 2)), np.ones(4), np.ones(3), 0.5), ValueError),
    ((np.ones(4), np.ones(4), np.ones(1), 0.5), ValueError),
    ((np.ones((4, 2)), np.ones(4), np.ones(2), 1.0), ValueError),
    ((np.ones((4, 2)), np.ones(4), np.ones(2), "0.5"), TypeError),
])
def test_regression_helpers_reject_bad_input(args, error):
    with pytest.raises(error):
        dropout_linreg_loss(*args)
    with pytest.raises(error):
        mc_dropout_linreg_loss(*args, 100, np.random.default_rng(0))
    with pytest.raises(ValueError):
        mc_dropout_linreg_loss(np.ones((4, 2)), np.ones(4), np.ones(2), 0.5, 1, np.random.default_rng(0))
    with pytest.raises(ValueError):
        mc_dropout_linreg_loss(np.ones((4, 2)), np.ones(4), np.ones(2), 0.5, 10, np.random.default_rng(0),
                               batch_size=0)


# --- settles_from and the stored Fig. 11 analogue ---------------------------------------


def test_settles_from_is_the_first_k_of_the_final_run_of_true():
    ks = [1, 2, 5, 10, 20]
    assert settles_from(ks, [True] * 5) == 1
    assert settles_from(ks, [False, False, True, True, True]) == 5
    assert settles_from(ks, [False, True, False, True, True]) == 10  # a flicker does not count
    assert settles_from(ks, [True, True, True, True, False]) is None
    with pytest.raises(ValueError):
        settles_from(ks, [True])
    with pytest.raises(ValueError):
        settles_from([], [])
    with pytest.raises(ValueError):
        settles_from([0, 1], [True, True])


def _fig11_runs(n_seeds=6, ks=(1, 10, 100)):
    rng = np.random.default_rng(0)
    scaling = 0.05 + 0.01 * rng.random(n_seeds)
    columns = {"net": ["784-256-256-10"] * n_seeds, "seed": list(range(n_seeds)), "scaling_error": scaling}
    for k in ks:  # more errors with fewer samples, a little noise
        columns[f"mc_error_{k}"] = scaling + 0.1 / k + 0.002 * rng.standard_normal(n_seeds)
    return pd.DataFrame(columns), list(ks)


def test_mc_versus_scaling_is_the_paired_difference_of_each_column():
    runs, ks = _fig11_runs()
    result = mc_versus_scaling(runs, ks)
    assert list(result) == ks
    for k in ks:
        assert result[k] == paired_difference(runs[f"mc_error_{k}"], runs["scaling_error"])
    assert result[1].resolved and result[1].low > 0  # one sub-network: more errors
    assert mc_versus_scaling(runs, ks, level=0.5)[100].level == 0.5


def test_mc_helpers_reject_a_table_that_is_not_fig11():
    runs, ks = _fig11_runs()
    with pytest.raises(ValueError, match="mc_error_50"):
        mc_versus_scaling(runs, [50])
    with pytest.raises(ValueError):
        mc_versus_scaling(runs.iloc[:1], ks)
    with pytest.raises(ValueError):
        mc_versus_scaling(runs, [])
    with pytest.raises(TypeError):
        mc_versus_scaling(runs.to_dict(), ks)
    with pytest.raises(ValueError):
        plot_mc_against_scaling(runs.drop(columns="scaling_error"), ks)


def test_plot_mc_against_scaling_draws_both_panels_on_a_log_axis():
    runs, ks = _fig11_runs()
    fig = plot_mc_against_scaling(runs, ks)
    error_ax, diff_ax = fig.axes
    assert diff_ax.get_xscale() == "log"
    np.testing.assert_allclose(error_ax.lines[0].get_ydata(), [100 * runs[f"mc_error_{k}"].mean() for k in ks])
    np.testing.assert_allclose(error_ax.lines[1].get_ydata(), [100 * runs["scaling_error"].mean()] * 2)
    plt.close(fig)


def test_largest_cdf_gap_is_the_kolmogorov_smirnov_statistic():
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(0.3, 1.2, size=200)
    assert largest_cdf_gap(a, b) == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)
    assert largest_cdf_gap([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert largest_cdf_gap([0.0, 0.0], [1.0]) == 1.0  # no overlap
    with pytest.raises(ValueError):
        largest_cdf_gap([], [1.0])
    with pytest.raises(ValueError):
        largest_cdf_gap([np.nan], [1.0])
