"""The tutorials chapter's plumbing: reusable runners, k-fold CV with in-fold scaling, paired differences."""

import numpy as np
import pytest

from utils.chapters.tutorials_offline import (
    KerasRunner,
    cross_validate,
    paired_difference,
    raw_breast_cancer,
    standardise,
)
from utils.data import load_dataset

keras = pytest.importorskip("keras")

from utils.keras_models import make_keras_mlp  # noqa: E402  (after Keras is known to be installed)


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


def test_paired_difference():
    mean, sd = paired_difference([0.9, 0.8, 0.7], [0.8, 0.8, 0.6])
    assert mean == pytest.approx(0.2 / 3) and sd == pytest.approx(np.std([0.1, 0.0, 0.1], ddof=1))
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0])
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])
