"""Experiment helpers: fresh, repeatable training runs; gaps and best epochs read off histories; bad input."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from torch import nn

from utils.experiments import (
    accuracies,
    best_epoch,
    generalisation_gap,
    mean_std,
    plot_bands,
    plot_gap_sweep,
    seed_errors,
    train_fresh_mlp,
)

matplotlib.use("Agg")

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
    (lambda: accuracies(nn.Linear(4, 3), {}), ValueError),
])
def test_bad_input_is_rejected_clearly(call, error):
    with pytest.raises(error):
        call()


def test_fresh_runs_repeat_and_a_shorter_run_is_a_prefix(blobs):
    x, y = blobs(120, n_features=4)
    val = blobs(40, n_features=4, seed=1)
    arguments = {"hidden": [16], "n_classes": 3, "seed": 3, "drop_rate": 0.2}
    model, long = train_fresh_mlp((x, y), val, epochs=4, **arguments)
    _, again = train_fresh_mlp((x, y), val, epochs=4, **arguments)
    _, short = train_fresh_mlp((x, y), val, epochs=2, **arguments)
    assert long == again
    assert all(short[key] == long[key][:2] for key in long)
    assert [layer.p for layer in model if isinstance(layer, nn.Dropout)] == [0.2]
    assert model[0].in_features == 4 and model[-1].out_features == 3
    scores = accuracies(model, {"train": (x, y), "val": val})
    assert set(scores) == {"train", "val"} and scores["train"] > 0.9
    assert scores["train"] == long["accuracy"][-1]


def test_training_options_are_passed_on(blobs):
    x, y = blobs(120, n_features=4)
    _, plain = train_fresh_mlp((x, y), None, hidden=[8], n_classes=3, epochs=2)
    _, decayed = train_fresh_mlp((x, y), None, hidden=[8], n_classes=3, epochs=2, weight_decay=0.5)
    assert set(plain) == {"loss", "accuracy"}
    assert plain["loss"] != decayed["loss"]


@pytest.mark.parametrize("train, n_classes", [
    ((np.zeros(5, dtype=np.float32), np.zeros(5, dtype=np.int64)), 3),  # 1-D inputs
    ((np.zeros((0, 4), dtype=np.float32), np.zeros(0, dtype=np.int64)), 3),  # no examples
    ((np.zeros((5, 4), dtype=np.float32), np.zeros(5)), 3),  # float labels
    ((np.zeros((5, 4), dtype=np.float32), np.full(5, 3)), 3),  # label out of range
    ((np.zeros((5, 4), dtype=np.float32), np.zeros(5, dtype=np.int64)), 1),  # one class
    ((np.zeros((5, 4), dtype=np.float32), np.zeros(5, dtype=np.int64)), 2.0),  # not an int
])
def test_fresh_mlp_rejects_bad_data(train, n_classes):
    with pytest.raises(ValueError):
        train_fresh_mlp(train, None, hidden=[4], n_classes=n_classes, epochs=1)


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


def test_seed_errors_train_one_model_per_seed_and_repeat(blobs):
    x, y = blobs(150, n_features=4)
    val = blobs(60, n_features=4, seed=1)
    arguments = {"seeds": [0, 1], "hidden": [8], "n_classes": 3, "epochs": 3, "drop_rate": 0.2}
    errors = seed_errors((x, y), {"train": (x, y), "val": val}, **arguments)
    assert set(errors) == {"train", "val"} and errors["val"].shape == (2,)
    assert np.all((errors["val"] >= 0) & (errors["val"] <= 1))
    again = seed_errors((x, y), {"train": (x, y), "val": val}, **arguments)
    assert all(np.array_equal(errors[k], again[k]) for k in errors)
    model, _ = train_fresh_mlp((x, y), None, hidden=[8], n_classes=3, epochs=3, seed=1, drop_rate=0.2)
    assert errors["val"][1] == pytest.approx(1 - accuracies(model, {"val": val})["val"])


@pytest.mark.parametrize("splits, seeds", [({}, [0]), ({"val": None}, [])])
def test_seed_errors_reject_empty_input(blobs, splits, seeds):
    x, y = blobs(30, n_features=4)
    with pytest.raises(ValueError):
        seed_errors((x, y), splits, seeds=seeds, hidden=[4], n_classes=3, epochs=1)


def test_mean_std_formats_percent_by_default():
    assert mean_std([0.01, 0.03]) == "2.00 ± 1.00"
    assert mean_std([1.0, 2.0, 3.0], scale=1, digits=1) == "2.0 ± 0.8"
    for bad in ([], [[0.1]]):
        with pytest.raises(ValueError):
            mean_std(bad)


def test_plot_bands_draws_means_and_bands_against_the_settings():
    runs = {"a": np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]]), "b": [0.5, 0.5, 0.5]}
    ax = plot_bands([10, 100, 1000], runs, xlabel="size", ylabel="error", log_x=True)
    a, b = ax.get_lines()
    assert list(a.get_xdata()) == [10, 100, 1000] and np.allclose(a.get_ydata(), [0.2, 0.2, 0.2])
    assert len(ax.collections) == 1  # one band: "b" is a single run
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "size"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    plt.close(ax.figure)


@pytest.mark.parametrize("settings, runs, kwargs", [
    ([1, 2], {}, {}),
    ([], {"a": [[]]}, {}),
    ([1, 2], {"a": [0.1, 0.2, 0.3]}, {}),
    ([0, 1], {"a": [0.1, 0.2]}, {"log_x": True}),
])
def test_plot_bands_rejects_bad_input(settings, runs, kwargs):
    with pytest.raises(ValueError):
        plot_bands(settings, runs, xlabel="x", ylabel="y", **kwargs)
    plt.close("all")
