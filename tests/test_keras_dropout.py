"""Tests of utils.keras_dropout: the reference Keras dropout layer against keras.layers.Dropout, and the model builders."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from utils.dropout import Dropout as NumpyDropout
from utils.keras_dropout import (
    ReferenceDropout,
    as_images,
    classic_mlp,
    kernel_column_norms,
    layer_table,
    small_cnn,
    zero_fraction_bound,
)

N = 200_000  # units per statistics check


def _ones(shape=(N,)):
    return np.ones(shape, dtype=np.float32)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_statistics_match_keras_dropout(rate):
    ours = np.asarray(ReferenceDropout(rate, seed=1)(_ones(), training=True))
    theirs = np.asarray(keras.layers.Dropout(rate, seed=2)(_ones(), training=True))
    bound = zero_fraction_bound(N, rate)
    scale = np.float32(1.0 / (1.0 - rate))
    for out in (ours, theirs):
        assert abs((out == 0).mean() - rate) < bound
        assert np.all(out[out != 0] == scale)  # every kept unit is scaled by exactly 1/(1 - rate)
        assert abs(out.mean() - 1.0) < 5 * math.sqrt(rate / (1 - rate) / N)


def test_same_seed_draws_the_same_mask_as_keras_dropout():
    x = np.random.default_rng(0).normal(size=(64, 32)).astype(np.float32)
    ours, theirs = ReferenceDropout(0.3, seed=7), keras.layers.Dropout(0.3, seed=7)
    for _ in range(3):  # the seed generators advance in step
        assert np.array_equal(np.asarray(ours(x, training=True)), np.asarray(theirs(x, training=True)))


def test_seeded_layer_repeats_across_layers_but_not_across_calls():
    first, second = ReferenceDropout(0.5, seed=3), ReferenceDropout(0.5, seed=3)
    a, b = (np.asarray(layer(_ones((1000,)), training=True)) for layer in (first, second))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, np.asarray(first(_ones((1000,)), training=True)))


@pytest.mark.parametrize("training", [None, False])
def test_inference_is_the_identity(training):
    x = np.random.default_rng(1).normal(size=(50, 20)).astype(np.float32)
    layer = ReferenceDropout(0.5, seed=0)
    assert np.array_equal(np.asarray(layer(x, training=training)), x)
    assert np.array_equal(np.asarray(layer(x)), x)


def test_rate_zero_is_the_identity_in_training():
    x = np.random.default_rng(1).normal(size=(50, 20)).astype(np.float32)
    assert np.array_equal(np.asarray(ReferenceDropout(0.0)(x, training=True)), x)


def test_keep_mask_is_honoured_and_matches_the_numpy_layer():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 30)).astype(np.float32)
    mask = rng.random(x.shape) >= 0.4
    ours = np.asarray(ReferenceDropout(0.4, seed=0)(x, training=True, keep_mask=mask))
    np.testing.assert_allclose(ours, NumpyDropout(0.4)(x, mask=mask), rtol=1e-6)  # x / 0.6 or x * (1 / 0.6)
    assert np.array_equal(ours == 0, ~mask | (x == 0))


def test_keep_mask_broadcasts_like_noise_shape():
    x = np.ones((4, 6, 8), dtype=np.float32)
    mask = np.random.default_rng(3).random((4, 1, 8)) >= 0.5
    out = np.asarray(ReferenceDropout(0.5)(tf.constant(x), training=True, keep_mask=tf.constant(mask)))
    assert np.array_equal(out, np.broadcast_to(mask * 2.0, x.shape))


def test_keep_mask_is_ignored_in_inference():
    x = np.ones((3, 4), dtype=np.float32)
    assert np.array_equal(np.asarray(ReferenceDropout(0.5)(x, keep_mask=np.zeros((3, 4), bool))), x)


def test_gradient_is_the_mask_times_the_scale():
    rng = np.random.default_rng(4)
    x = tf.constant(rng.normal(size=(8, 5)).astype(np.float32))
    mask = rng.random((8, 5)) >= 0.25
    upstream = rng.normal(size=(8, 5)).astype(np.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(ReferenceDropout(0.25)(x, training=True, keep_mask=mask) * upstream)
    grad = tape.gradient(loss, x).numpy()
    numpy_layer = NumpyDropout(0.25)
    numpy_layer(x.numpy(), mask=mask)
    np.testing.assert_allclose(grad, numpy_layer.backward(upstream), rtol=1e-6)


def test_random_draw_lets_gradients_through():
    x = tf.Variable(np.ones((100,), dtype=np.float32))
    with tf.GradientTape() as tape:
        out = ReferenceDropout(0.5, seed=5)(x, training=True)
        loss = tf.reduce_sum(out)
    grad = tape.gradient(loss, x).numpy()
    assert np.array_equal(grad, out.numpy())  # d(sum)/dx is the scaled mask, which on ones is the output itself


def test_noise_shape_shares_the_mask_along_size_one_axes():
    out = np.asarray(ReferenceDropout(0.5, noise_shape=(None, 1, 8), seed=1)(_ones((16, 6, 8)), training=True))
    assert np.all(out == out[:, :1, :])  # the same mask at every timestep
    assert 0 < (out == 0).mean() < 1


def test_works_inside_fit_and_survives_saving(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              ReferenceDropout(0.5, noise_shape=(None, 8), seed=2), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    history = model.fit(x, (x[:, 0] > 0).astype(int), epochs=2, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.layers[1], ReferenceDropout)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_get_config_round_trip():
    layer = ReferenceDropout(0.3, noise_shape=[None, 1], seed=9, name="ref")
    config = layer.get_config()
    assert (config["rate"], config["noise_shape"], config["seed"], config["name"]) == (0.3, (None, 1), 9, "ref")
    clone = ReferenceDropout.from_config(config)
    assert clone.get_config() == config
    x = _ones((20, 10))
    assert np.array_equal(np.asarray(clone(x, training=True)), np.asarray(layer(x, training=True)))


@pytest.mark.parametrize("rate, error", [(1.0, ValueError), (-0.1, ValueError), (1.5, ValueError),
                                         ("0.5", TypeError), (True, TypeError)])
def test_bad_rate_is_rejected(rate, error):
    with pytest.raises(error, match="rate"):
        ReferenceDropout(rate)


@pytest.mark.parametrize("noise_shape, error", [("abc", TypeError), (5, TypeError), ((None, 0), ValueError),
                                                ((None, 2.5), ValueError)])
def test_bad_noise_shape_is_rejected(noise_shape, error):
    with pytest.raises(error, match="noise_shape"):
        ReferenceDropout(0.5, noise_shape=noise_shape)


def test_noise_shape_that_does_not_fit_the_input_is_rejected():
    with pytest.raises(ValueError, match="noise_shape"):
        ReferenceDropout(0.5, noise_shape=(None, 3))(_ones((4, 5)), training=True)
    with pytest.raises(ValueError, match="axes"):
        ReferenceDropout(0.5, noise_shape=(None, 1, 1))(_ones((4, 5)), training=True)


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (1.5, TypeError), ("1", TypeError)])
def test_bad_seed_is_rejected(seed, error):
    with pytest.raises(error, match="seed"):
        ReferenceDropout(0.5, seed=seed)


def test_bad_keep_mask_is_rejected():
    layer = ReferenceDropout(0.5)
    with pytest.raises(TypeError, match="boolean"):
        layer(_ones((4, 5)), training=True, keep_mask=np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match="keep_mask has size 3"):
        layer(_ones((4, 5)), training=True, keep_mask=np.ones((4, 3), bool))
    with pytest.raises(ValueError, match="axes"):
        layer(_ones((4, 5)), training=True, keep_mask=np.ones((5,), bool))


def test_integer_inputs_are_rejected():
    with pytest.raises(TypeError, match="floating-point"):
        ReferenceDropout(0.5)(np.ones((3, 3), dtype=np.int32), training=True)


def test_classic_mlp_has_the_example_layout():
    model = classic_mlp(seed=0)
    classes = [type(layer).__name__ for layer in model.layers]
    assert classes == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.2, 0.2]
    assert model.layers[0].units == model.layers[2].units == 512
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert model.count_params() == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10


def test_classic_mlp_options():
    model = classic_mlp(0.0, hidden=(16,), max_norm=2.0, optimizer=keras.optimizers.SGD(0.1))
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    constraint = model.get_layer("hidden_1").kernel_constraint
    assert isinstance(constraint, keras.constraints.MaxNorm)
    assert (constraint.max_value, constraint.axis) == (2.0, 0)
    assert "MaxNorm(2, axis=0)" in layer_table(model).loc["hidden_1", "settings"]


@pytest.mark.parametrize("kwargs, error", [({"drop_rate": 1.0}, ValueError), ({"hidden": ()}, ValueError),
                                           ({"hidden": (0,)}, ValueError), ({"max_norm": -1.0}, ValueError),
                                           ({"optimizer": 0.1}, TypeError), ({"n_classes": 1}, ValueError)])
def test_classic_mlp_bad_arguments(kwargs, error):
    with pytest.raises(error):
        classic_mlp(**kwargs)


def test_small_cnn_layout_and_output():
    model = small_cnn(0.2, 0.5, filters=(4, 8), seed=1)
    names = [type(layer).__name__ for layer in model.layers]
    assert names.count("SpatialDropout2D") == 2 and names.count("Dropout") == 1
    probs = model.predict(np.zeros((3, 28, 28, 1), np.float32), verbose=0)
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert "SpatialDropout2D" not in [type(layer).__name__ for layer in small_cnn(0.0, 0.0).layers]
    with pytest.raises(ValueError, match="image_shape"):
        small_cnn(image_shape=(28, 28))


def test_as_images():
    assert as_images(np.zeros((5, 784))).shape == (5, 28, 28, 1)
    with pytest.raises(ValueError, match="784"):
        as_images(np.zeros((5, 100)))


def test_kernel_column_norms():
    layer = keras.layers.Dense(3)
    layer.build((None, 2))
    layer.kernel.assign(np.array([[3.0, 0.0, 1.0], [4.0, 2.0, 1.0]], np.float32))
    np.testing.assert_allclose(kernel_column_norms(layer), [5.0, 2.0, math.sqrt(2)], rtol=1e-6)
    with pytest.raises(TypeError, match="Dense"):
        kernel_column_norms(keras.layers.Dropout(0.5))


def test_zero_fraction_bound():
    assert zero_fraction_bound(10_000, 0.5) == pytest.approx(5 * 0.005)
    with pytest.raises(ValueError):
        zero_fraction_bound(0, 0.5)
    with pytest.raises(ValueError):
        zero_fraction_bound(10, 1.0)


def test_layer_table_rejects_non_models():
    with pytest.raises(TypeError, match="keras.Model"):
        layer_table(keras.layers.Dense(2))


def test_float64_layer_keeps_float64():
    x = np.random.default_rng(6).normal(size=(10, 4))
    mask = np.random.default_rng(7).random((10, 4)) >= 0.5
    out = ReferenceDropout(0.5, dtype="float64")(x, training=True, keep_mask=mask)
    assert keras.backend.standardize_dtype(out.dtype) == "float64"
    np.testing.assert_allclose(np.asarray(out), x * mask * 2.0, rtol=1e-15)
    drawn = ReferenceDropout(0.5, seed=1, dtype="float64")(x, training=True)
    assert keras.backend.standardize_dtype(drawn.dtype) == "float64"
