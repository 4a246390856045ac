"""The tutorials chapter's code: reusable runners, k-fold CV with in-fold scaling, stored runs and their readings."""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from utils.chapters.tutorials_offline import (
    arms,
    difference_table,
    epoch_differences,
    kfold_settings,
    outcome,
    per_epoch,
    plot_epoch_comparison,
    spread_table,
)
from utils.data import load_dataset
from utils.stats import paired_difference
from utils.sweeps import SWEEPS

keras = pytest.importorskip("keras")

# after Keras is known to be installed
from utils.chapters.tutorials_offline_sweeps import (  # noqa: E402
    KerasRunner,
    cross_validate,
    raw_breast_cancer,
    runner,
    standardise,
)
from utils.chapters.tutorials_offline_sweeps import _runner as cached_runner  # noqa: E402
from utils.keras_models import make_keras_mlp  # noqa: E402


@pytest.fixture(scope="module")
def tiny_task():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    return (x[:60], y[:60]), (x[60:], y[60:])


def _runner(rate):
    return KerasRunner(lambda seed: make_keras_mlp(4, [8], 1, drop_rate=rate, seed=seed),
                       optimizer=lambda: keras.optimizers.SGD(0.1, momentum=0.9), loss="binary_crossentropy")


def test_a_reused_runner_repeats_a_brand_new_one_exactly(tiny_task):
    train, val = tiny_task
    reused = _runner(0.3)
    reused.fit(train, val, seed=5, epochs=2, batch_size=16)  # some history to forget
    again = reused.fit(train, val, seed=7, epochs=3, batch_size=16)
    fresh = _runner(0.3).fit(train, val, seed=7, epochs=3, batch_size=16)
    assert again == fresh
    assert set(again) == {"loss", "accuracy", "val_loss", "val_accuracy"} and len(again["loss"]) == 3
    other = reused.fit(train, val, seed=8, epochs=3, batch_size=16)
    assert other["loss"] != again["loss"]


def test_runner_learns_and_scores_with_dropout_off(tiny_task):
    train, val = tiny_task
    runner = _runner(0.3)
    history = runner.fit(train, seed=0, epochs=15, batch_size=16)
    assert set(history) == {"loss", "accuracy"}
    assert history["loss"][-1] < history["loss"][0]
    assert runner.accuracy(*val) > 0.8
    assert runner.accuracy(*val) == runner.accuracy(*val)  # no dropout noise at prediction time
    assert runner.predict(val[0]).shape == (30, 1)


def test_runner_rejects_bad_input(tiny_task):
    train, _ = tiny_task
    runner = _runner(0.0)
    with pytest.raises(ValueError):
        runner.fit((train[0], train[1][:-1]), seed=0, epochs=1)
    with pytest.raises(ValueError):
        runner.fit(train, seed=0, epochs=0)
    with pytest.raises(TypeError):
        KerasRunner("not a builder", optimizer=lambda: None, loss="mse")


def test_standardise_uses_the_first_array_statistics_only():
    rng = np.random.default_rng(1)
    train, other = rng.normal(5, 3, size=(200, 3)), rng.normal(5, 3, size=(50, 3))
    train_s, other_s, constant = standardise(np.c_[train[:, :2], np.ones(200)], other, np.ones((4, 3)))
    np.testing.assert_allclose(train_s[:, :2].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train_s[:, :2].std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(other_s[:, :2], (other[:, :2] - train[:, :2].mean(0)) / train[:, :2].std(0), atol=1e-5)
    assert np.all(train_s[:, 2] == 0) and train_s.dtype == np.float32
    with pytest.raises(ValueError):
        standardise(np.ones(5))


def test_cross_validation_scales_inside_each_fold_unless_told_to_leak():
    rng = np.random.default_rng(2)
    x = rng.normal(10, 4, size=(60, 3))
    y = np.repeat([0, 1], 30)
    seen = {}

    def record(leak):
        def fit_and_score(train, held_out, fold):
            seen[(leak, fold)] = (train[0].mean(axis=0), held_out[0], len(train[1]) + len(held_out[1]))
            return float(fold)
        return fit_and_score

    honest = cross_validate(record(False), x, y, n_splits=3, seed=0)
    leaky = cross_validate(record(True), x, y, n_splits=3, seed=0, leak=True)
    np.testing.assert_array_equal(honest, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(leaky, honest)
    for fold in range(3):
        train_mean, held_out, total = seen[(False, fold)]
        np.testing.assert_allclose(train_mean, 0, atol=1e-5)  # each fold's training part is centred on itself
        assert total == 60
        leaky_mean = seen[(True, fold)][0]
        assert np.abs(leaky_mean).max() > 1e-3  # centred on all the data instead, not on the training part
        assert not np.allclose(held_out, seen[(True, fold)][1])
    with pytest.raises(ValueError):
        cross_validate(record(False), x, y[:-1])
    with pytest.raises(ValueError):
        cross_validate(record(False), x, y, n_splits=1)


def test_raw_breast_cancer_holds_out_the_loader_test_split():
    (x_dev, y_dev), (x_test, y_test) = raw_breast_cancer(seed=0)
    loaded = load_dataset("breast_cancer", seed=0)
    assert len(y_dev) + len(y_test) == 569 and len(y_test) == len(loaded.y_test)
    np.testing.assert_array_equal(y_test, loaded.y_test)
    # the loader's test features are these, standardised column by column (an increasing affine map)
    for column in range(x_test.shape[1]):
        assert np.corrcoef(x_test[:, column], loaded.x_test[:, column])[0, 1] > 0.9999
    assert x_dev.mean() > 10  # unscaled
    with pytest.raises(ValueError):
        raw_breast_cancer(test_fraction=1.0)


def _tiny(name, **settings):
    """Sweep `name` shrunk to seconds, with the per-epoch and per-fold metrics its shorter runs return."""
    sweep = SWEEPS[name]
    parameters = {**sweep.parameters, **settings}
    counts = {"val_acc": parameters.get("epochs"), "val_loss": parameters.get("epochs"),
              "fold_acc": parameters.get("n_splits")}

    def kept(metric):
        stem, _, number = metric.rpartition("_")
        return stem not in counts or not number.isdigit() or int(number) <= counts[stem]

    return dataclasses.replace(sweep, parameters=parameters, metrics=tuple(filter(kept, sweep.metrics)))


@pytest.mark.parametrize("name, settings", [
    ("tutorials_mlp", {"hidden": [8], "epochs": 2}),
    ("tutorials_cnn", {"filters": [2, 4], "epochs": 2}),
])
def test_image_runs_return_their_sweeps_metrics_and_repeat_exactly(name, settings):
    sweep = _tiny(name, **settings)
    setting = sweep.grid[-1]  # the dropout arm
    first = sweep.measure(setting, 3)  # Sweep.measure checks the metric names against the sweep's
    sweep.measure(setting, 4)
    assert sweep.measure(setting, 3) == first  # the process's reused runner repeats a run exactly
    curve = [first["val_acc_1"], first["val_acc_2"]]
    assert first["val_acc_last"] == curve[-1] and first["val_acc_best"] == max(curve)
    assert first["best_epoch"] == 1 + int(np.argmax(curve))  # the first epoch with the highest accuracy
    assert all(0.0 <= first[m] <= 1.0 for m in ("train_acc_fit", "train_acc_off", "test_acc_last", "test_acc_best"))
    if first["best_epoch"] == 2:
        assert first["test_acc_best"] == first["test_acc_last"]


def test_kfold_run_pairs_configurations_fold_by_fold_and_leaks_on_request():
    sweep = _tiny("tutorials_kfold", epochs=1, n_splits=2, hidden=[4])
    runs = {tuple(setting.values()): sweep.measure(setting, 1) for setting in sweep.grid}
    assert set(runs[("baseline", "inside folds")]) == {"fold_acc_1", "fold_acc_2", "cv_acc"}
    for metrics in runs.values():
        assert metrics["cv_acc"] == pytest.approx((metrics["fold_acc_1"] + metrics["fold_acc_2"]) / 2)
        assert 0.5 < metrics["cv_acc"] <= 1.0
    assert runs[("dropout + max-norm", "inside folds")] != runs[("dropout + max-norm", "all data")]
    with pytest.raises(ValueError):
        sweep.measure({"config": "baseline", "scaling": "before the folds"}, 0)


def test_kfold_settings_name_the_runner_the_kfold_runs_train():
    sweep = _tiny("tutorials_kfold", epochs=1, n_splits=2, hidden=[4])
    for config in sweep.parameters["configs"]:
        sweep.measure({"config": config, "scaling": "inside folds"}, 0)
        misses = cached_runner.cache_info().misses
        trained = runner(kfold_settings(sweep.parameters, config))
        assert cached_runner.cache_info().misses == misses  # the very runner that the k-fold run trained
        assert trained.model.input_shape == (None, 30) and trained.model.output_shape == (None, 1)
    with pytest.raises(ValueError):
        kfold_settings(sweep.parameters, "no such network")


def test_runner_is_one_per_architecture_and_checks_its_settings():
    settings = {"model": "mlp", "n_in": 4, "n_out": 1, "hidden": [3], "optimizer": "sgd", "lr": 0.1}
    assert runner(settings) is runner({**settings, "epochs": 7, "dataset": "ignored"})
    assert runner(settings) is not runner({**settings, "drop_rate": 0.5})
    with pytest.raises(ValueError):
        runner({**settings, "model": "rnn"})
    with pytest.raises(ValueError):
        runner({**settings, "optimizer": "lbfgs"})


def _table(seeds=(2, 0, 1)):
    last = {0.0: {0: 0.90, 1: 0.91, 2: 0.92}, 0.5: {0: 0.92, 1: 0.94, 2: 0.95}}
    rows = [{"drop_rate": rate, "seed": seed, "acc_1": 0.5 + rate + seed / 10, "acc_2": 0.6 + rate * seed,
             "acc_last": last[rate][seed]} for rate in (0.0, 0.5) for seed in seeds]
    return pd.DataFrame(rows)


def test_arms_pair_the_runs_by_seed():
    split = arms(_table(), "drop_rate")
    assert list(split) == [0.0, 0.5]
    assert list(split[0.5]["seed"]) == [0, 1, 2]
    uneven = _table()[lambda t: ~((t["drop_rate"] == 0.5) & (t["seed"] == 2))]
    with pytest.raises(ValueError, match="pair up"):
        arms(uneven, "drop_rate")
    with pytest.raises(ValueError):
        arms(_table(), "rate")
    both = arms(_table().assign(scaling="inside folds"), ["drop_rate", "scaling"])
    assert list(both) == [(0.0, "inside folds"), (0.5, "inside folds")]


def test_per_epoch_columns_and_their_paired_differences():
    split = arms(_table(), "drop_rate")
    curves = {rate: per_epoch(runs, "acc") for rate, runs in split.items()}
    assert curves[0.0].shape == (3, 2)
    np.testing.assert_allclose(curves[0.5][:, 1], [0.6, 1.1, 1.6])
    differences = epoch_differences(curves[0.5], curves[0.0])
    assert len(differences) == 2
    assert differences[0].mean == pytest.approx(0.5) and differences[0].sd == pytest.approx(0.0, abs=1e-12)
    assert differences[1] == paired_difference(curves[0.5][:, 1], curves[0.0][:, 1])
    with pytest.raises(ValueError):
        per_epoch(split[0.0], "loss")
    with pytest.raises(ValueError):
        epoch_differences(curves[0.0], curves[0.0][:, :1])


def test_tables_say_which_spread_and_which_interval():
    split = arms(_table(), "drop_rate")
    spread = spread_table({"none": split[0.0], "half": split[0.5]}, {"acc_last": "last"})
    assert spread.loc["last", "half"] == "93.7 ± 1.5"
    assert spread.columns.name == "mean ± sd (sd over 3 seeds)"
    differences = difference_table(split[0.5], split[0.0], {"acc_last": "last epoch"})
    result = paired_difference(split[0.5]["acc_last"], split[0.0]["acc_last"])
    assert differences.loc["last epoch"].to_dict() == {
        "mean (points)": "+2.7", "95 % interval (3 seeds)": f"{result.low * 100:+.1f} to {result.high * 100:+.1f}",
        "verdict": "resolved"}
    assert result.low > 0
    with pytest.raises(ValueError):
        difference_table(split[0.5], split[0.0].iloc[::-1], {"acc_last": "last epoch"})


def test_outcome_says_the_verdict_and_who_it_favours():
    up = paired_difference([0.92, 0.93, 0.94], [0.90, 0.91, 0.91])
    assert outcome(up) == f"is resolved in favour of dropout: {up.describe()}"
    assert outcome(paired_difference([0.90, 0.91, 0.91], [0.92, 0.93, 0.94]), over="folds").startswith(
        "is resolved in favour of no dropout: ")
    unclear = paired_difference([0.92, 0.90, 0.94], [0.91, 0.92, 0.92])
    assert outcome(unclear, favoured=("leak", "honest")) == f"is not resolved: {unclear.describe()}"


def test_epoch_comparison_figure_has_the_curves_and_the_interval():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.8, 0.9, size=(5, 4))
    fig = plot_epoch_comparison({"plain": a, "dropout": a + 0.01}, ylabel="validation accuracy")
    left, right = fig.axes
    assert len(left.lines) == 2 * (5 + 1)
    np.testing.assert_allclose(right.lines[0].get_ydata(), 1.0)  # +1 point at every epoch
    plt.close(fig)
    with pytest.raises(ValueError):
        plot_epoch_comparison({"plain": a}, ylabel="accuracy")


def test_a_difference_that_rounds_to_zero_shows_two_decimals():
    a = pd.DataFrame({"seed": [0, 1, 2], "acc": [0.9000, 0.9100, 0.9200]})
    b = pd.DataFrame({"seed": [0, 1, 2], "acc": [0.9002, 0.9101, 0.9203]})
    table = difference_table(a, b, {"acc": "accuracy"})
    assert table.loc["accuracy", "mean (points)"] == "-0.02"
