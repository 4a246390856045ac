"""The overfitting chapter's helpers: the gap, the best epoch, the late slope, weight norms, the training-mode loss,
paired differences from a baseline, and the sweep plot."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from utils.chapters.overfitting import (
    best_epoch,
    difference_table,
    differences,
    generalisation_gap,
    late_slope,
    paired_text,
    plot_gap_sweep,
    training_mode_loss,
    weight_norm,
)
from utils.stats import paired_difference

HISTORY = {
    "loss": [1.0, 0.5, 0.2, 0.1],
    "accuracy": [0.6, 0.8, 0.95, 1.0],
    "val_loss": [1.1, 0.7, 0.8, 0.9],
    "val_accuracy": [0.55, 0.75, 0.85, 0.85],
}


def test_gap_is_positive_when_training_looks_better():
    assert generalisation_gap(HISTORY) == pytest.approx(0.15)
    assert generalisation_gap(HISTORY, "accuracy", epoch=1) == pytest.approx(0.05)
    assert generalisation_gap(HISTORY, "loss") == pytest.approx(0.8)
    assert generalisation_gap(HISTORY, "loss", epoch=2) == pytest.approx(0.2)


def test_best_epoch_is_one_based_and_takes_the_first_tie():
    assert best_epoch(HISTORY) == 2
    assert best_epoch(HISTORY, "accuracy") == 3  # 0.85 at epochs 3 and 4


def test_late_slope_fits_a_line_to_the_last_epochs_only():
    assert late_slope(HISTORY, epochs=3) == pytest.approx(0.1)  # 0.7, 0.8, 0.9
    assert late_slope(HISTORY, "loss", epochs=2) == pytest.approx(-0.1)
    assert late_slope(HISTORY, epochs=4) == pytest.approx(np.polyfit(range(4), HISTORY["val_loss"], 1)[0])
    noisy_flat = {"val_loss": [0.3, 0.5, 0.3, 0.5, 0.3, 0.5, 0.3, 0.31]}  # last value above the minimum ...
    assert noisy_flat["val_loss"][-1] > min(noisy_flat["val_loss"])
    assert abs(late_slope(noisy_flat, epochs=8)) < 0.02  # ... yet no trend


def _mlp(drop_rate):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(drop_rate), nn.Linear(8, 3))


def test_weight_norm_counts_weights_not_biases():
    model = _mlp(0.5)
    with torch.no_grad():
        for layer in (model[0], model[3]):
            layer.weight.fill_(1.0)
            layer.bias.fill_(100.0)
    assert weight_norm(model) == pytest.approx(np.sqrt(4 * 8 + 8 * 3))


def test_training_mode_loss_uses_masks_leaves_mode_and_random_state_alone():
    x = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)
    y = np.arange(32) % 3
    model = _mlp(0.5).eval()
    with torch.no_grad():
        eval_loss = nn.functional.cross_entropy(model(torch.as_tensor(x)), torch.as_tensor(y)).item()
    state = torch.get_rng_state()
    loss = training_mode_loss(model, x, y, draws=5, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    assert not model.training
    assert loss != pytest.approx(eval_loss)
    assert training_mode_loss(model, x, y, draws=5, seed=3) == loss  # repeatable
    plain = _mlp(0.0).eval()  # no dropout: training mode is evaluation mode
    with torch.no_grad():
        expected = nn.functional.cross_entropy(plain(torch.as_tensor(x)), torch.as_tensor(y)).item()
    assert training_mode_loss(plain, x, y) == pytest.approx(expected)


def test_differences_pair_each_setup_with_the_baseline_by_seed():
    scores = {"plain": {"test": [0.88, 0.89, 0.90], "loss": [0.5, 0.6, 0.7]},
              "dropout": {"test": [0.91, 0.90, 0.93], "loss": [0.3, 0.3, 0.4]}}
    diffs = differences(scores, "plain")
    assert list(diffs) == ["dropout"] and list(diffs["dropout"]) == ["test", "loss"]
    assert diffs["dropout"]["test"] == paired_difference(scores["dropout"]["test"], scores["plain"]["test"])
    table = difference_table(diffs, scales={"test": 100, "loss": 1}, digits={"test": 1, "loss": 3})
    assert table.loc[("dropout", "test"), "mean difference"] == "+2.3"
    assert table.loc[("dropout", "loss"), "mean difference"] == "-0.267"
    assert table.loc[("dropout", "loss"), "verdict"] == diffs["dropout"]["loss"].verdict()
    low, high = diffs["dropout"]["test"].low * 100, diffs["dropout"]["test"].high * 100
    assert table.loc[("dropout", "test"), "95 % interval"] == f"{low:+.1f} to {high:+.1f}"
    chosen = difference_table(diffs, scales={"test": 100, "loss": 1}, digits={"test": 1, "loss": 3},
                              no_verdict={("dropout", "loss"): "chosen on this set: no verdict"})
    assert chosen.loc[("dropout", "loss"), "verdict"] == "chosen on this set: no verdict"
    assert chosen.loc[("dropout", "loss"), "mean difference"] == "-0.267"  # the numbers stay
    assert chosen.loc[("dropout", "test"), "verdict"] == table.loc[("dropout", "test"), "verdict"]


def test_sweep_plot_draws_means_and_seeds_in_setting_order():
    later = {key: values[::-1] for key, values in HISTORY.items()}  # last epoch = HISTORY's first
    fig = plot_gap_sweep({8: [HISTORY, later], 2: [later]}, xlabel="width")
    left, right = fig.axes
    assert [line.get_label() for line in left.get_lines()] == ["training", "validation"]
    assert list(left.get_lines()[0].get_xdata()) == [2, 8]
    assert np.allclose(left.get_lines()[1].get_ydata(), [0.55, (0.85 + 0.55) / 2])
    assert np.allclose(right.get_lines()[0].get_ydata(), [0.05, (0.15 + 0.05) / 2])
    seeds = np.concatenate([c.get_offsets() for c in right.collections])
    assert np.allclose(sorted(map(tuple, seeds.tolist())), [(2, 0.05), (8, 0.05), (8, 0.15)])
    assert right.get_xscale() == "log" and right.get_xlabel() == "width"
    plt.close(fig)


@pytest.mark.parametrize("call, error", [
    (lambda: generalisation_gap(HISTORY, "error"), ValueError),
    (lambda: generalisation_gap(HISTORY, epoch=0), ValueError),
    (lambda: generalisation_gap(HISTORY, epoch=5), ValueError),
    (lambda: generalisation_gap(HISTORY, epoch=True), ValueError),
    (lambda: generalisation_gap({"accuracy": [1.0]}), KeyError),
    (lambda: generalisation_gap({"accuracy": [1.0], "val_accuracy": []}), ValueError),
    (lambda: generalisation_gap({"accuracy": [1.0], "val_accuracy": [0.5, 0.6]}), ValueError),
    (lambda: best_epoch(HISTORY, "val_loss"), ValueError),
    (lambda: best_epoch({"loss": [1.0]}), KeyError),
    (lambda: late_slope(HISTORY, epochs=1), ValueError),
    (lambda: late_slope(HISTORY, epochs=5), ValueError),
    (lambda: late_slope(HISTORY, "val_error"), KeyError),
    (lambda: weight_norm(nn.ReLU()), ValueError),
    (lambda: training_mode_loss(_mlp(0.5), np.zeros((2, 4)), np.zeros(3, int)), ValueError),
    (lambda: training_mode_loss(_mlp(0.5), np.zeros((2, 4)), np.zeros(2, int), draws=0), ValueError),
    (lambda: differences({"plain": {"test": [1, 2]}}, "none"), KeyError),
    (lambda: differences({"plain": {"test": [1, 2]}, "b": {"loss": [1, 2]}}, "plain"), ValueError),
    (lambda: difference_table(differences({"a": {"t": [1, 2]}, "b": {"t": [2, 4]}}, "a"),
                              scales={}, digits={"t": 1}), KeyError),
    (lambda: difference_table(differences({"a": {"t": [1, 2]}, "b": {"t": [2, 4]}}, "a"),
                              scales={"t": 1}, digits={"t": 1}, no_verdict={("b", "loss"): "x"}), KeyError),
])
def test_bad_input_is_rejected_clearly(call, error):
    with pytest.raises(error):
        call()


@pytest.mark.parametrize("runs, kwargs, error", [
    ({}, {}, ValueError),
    ({0: [HISTORY]}, {}, ValueError),
    ({2: [HISTORY]}, {"log_base": 1}, ValueError),
    ({2: []}, {}, ValueError),
    ({2: [{"accuracy": [1.0]}]}, {}, KeyError),
    ({2: [HISTORY], 8: [{**HISTORY, "val_accuracy": [1.0] * 4}]}, {"log_gap": True}, ValueError),
])
def test_sweep_plot_rejects_bad_input(runs, kwargs, error):
    with pytest.raises(error):
        plot_gap_sweep(runs, xlabel="n", **kwargs)


def test_log_gap_sweep_draws_the_gap_on_log_log_axes_with_its_fitted_line():
    halves = {n: [{**HISTORY, "val_accuracy": [0.0, 0.0, 0.0, 1.0 - 0.4 / n ** 0.5]}] for n in (1, 4, 16)}
    fig = plot_gap_sweep(halves, xlabel="n", log_gap=True)
    right = fig.axes[1]
    assert right.get_xscale() == "log" and right.get_yscale() == "log"
    fitted = [line for line in right.get_lines() if line.get_label().startswith("fitted line")]
    assert len(fitted) == 1 and "slope −0.50" in fitted[0].get_label()
    assert np.allclose(fitted[0].get_ydata(), [0.4, 0.2, 0.1])
    low, high = right.get_ylim()
    ticks = [t for t in right.get_yticks() if low <= t <= high]
    assert min(ticks) <= 1.2 * low  # a labelled tick near the bottom of the axis
    plt.close(fig)


def test_log_gap_sweep_labels_a_tick_just_below_gaps_that_start_above_one():
    gaps = {n: [{**HISTORY, "val_accuracy": [0.0, 0.0, 0.0, 1.0 - g]}] for n, g in ((1, 0.235), (4, 0.055))}
    fig = plot_gap_sweep(gaps, xlabel="n", log_gap=True)
    right = fig.axes[1]
    low, high = right.get_ylim()
    ticks = [t for t in right.get_yticks() if low <= t <= high]
    assert np.isclose(min(ticks), 0.05) and low < 0.05 < 0.055
    plt.close(fig)


def test_paired_text_names_a_difference_equal_on_every_seed_and_otherwise_gives_the_interval():
    assert paired_text([0.90, 0.80, 0.70], [0.934, 0.834, 0.734]) == "-3.4 points on each of the 3 seeds"
    assert paired_text([1.0, 2.0], [1.0, 2.0], scale=1, unit="") == "+0.0 on each of the 2 seeds"
    range_text = paired_text([0.90, 0.80], [0.934, 0.835])
    assert range_text == "-3.5 to -3.4 points, seed by seed (each of the 2 seeds in that range)"
    assert "interval" not in range_text  # per-seed values must not read as an interval
    spread = paired_text([0.90, 0.80, 0.75], [0.88, 0.81, 0.70])
    assert spread.endswith(": not resolved") and "(95 % interval, 3 seeds)" in spread
    with pytest.raises(ValueError):
        paired_text([1.0], [2.0])
