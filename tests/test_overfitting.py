"""The overfitting chapter's history readers: the generalisation gap, the best epoch, and the sweep plot."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from utils.chapters.overfitting import best_epoch, generalisation_gap, plot_gap_sweep

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
])
def test_bad_input_is_rejected_clearly(call, error):
    with pytest.raises(error):
        call()


def test_sweep_plot_draws_accuracies_and_gaps_in_setting_order():
    later = {key: values[::-1] for key, values in HISTORY.items()}  # last epoch = HISTORY's first
    fig = plot_gap_sweep({8: HISTORY, 2: later}, xlabel="width")
    left, right = fig.axes
    assert [line.get_label() for line in left.get_lines()] == ["training", "validation"]
    assert list(left.get_lines()[0].get_xdata()) == [2, 8]
    assert list(left.get_lines()[1].get_ydata()) == [0.55, 0.85]
    assert np.allclose(right.get_lines()[0].get_ydata(), [0.05, 0.15])
    assert right.get_xscale() == "log" and right.get_xlabel() == "width"
    plt.close(fig)


@pytest.mark.parametrize("histories, kwargs, error", [
    ({}, {}, ValueError),
    ({0: HISTORY}, {}, ValueError),
    ({2: HISTORY}, {"log_base": 1}, ValueError),
    ({2: {"accuracy": [1.0]}}, {}, KeyError),
])
def test_sweep_plot_rejects_bad_input(histories, kwargs, error):
    with pytest.raises(error):
        plot_gap_sweep(histories, xlabel="n", **kwargs)
