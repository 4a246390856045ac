"""The book's Keras dropout layer against keras.layers.Dropout and the NumPy layer, and the Keras chapter's helpers."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from utils.chapters.keras_dropout import (
    MinimalDropout,
    as_images,
    kernel_column_norms,
    layer_table,
    zero_fraction_bound,
)
from utils.dropout import Dropout
from utils.keras_dropout import KerasDropout
from utils.keras_models import make_keras_mlp

N = 200_000  # units per statistics check


def _ones(shape=(N,)):
    return np.ones(shape, dtype=np.float32)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_statistics_match_keras_dropout(rate):
    ours = np.asarray(KerasDropout(rate, seed=1)(_ones(), training=True))
    theirs = np.asarray(keras.layers.Dropout(rate, seed=2)(_ones(), training=True))
    bound = zero_fraction_bound(N, rate)
    scale = np.float32(1.0 / (1.0 - rate))
    for out in (ours, theirs):
        assert abs((out == 0).mean() - rate) < bound
        assert np.all(out[out != 0] == scale)  # every kept unit is scaled by exactly 1/(1 - rate)
        assert abs(out.mean() - 1.0) < 5 * math.sqrt(rate / (1 - rate) / N)


def test_same_seed_draws_the_same_mask_as_keras_dropout():
    x = np.random.default_rng(0).normal(size=(64, 32)).astype(np.float32)
    ours, theirs = KerasDropout(0.3, seed=7), keras.layers.Dropout(0.3, seed=7)
    for _ in range(3):  # the seed generators advance in step
        assert np.array_equal(np.asarray(ours(x, training=True)), np.asarray(theirs(x, training=True)))


def test_seeded_layer_repeats_across_layers_but_not_across_calls():
    first, second = KerasDropout(0.5, seed=3), KerasDropout(0.5, seed=3)
    a, b = (np.asarray(layer(_ones((1000,)), training=True)) for layer in (first, second))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, np.asarray(first(_ones((1000,)), training=True)))


@pytest.mark.parametrize("training", [None, False])
def test_inference_is_the_identity(training):
    x = np.random.default_rng(1).normal(size=(50, 20)).astype(np.float32)
    layer = KerasDropout(0.5, seed=0)
    assert np.array_equal(np.asarray(layer(x, training=training)), x)
    assert np.array_equal(np.asarray(layer(x)), x)


def test_rate_zero_is_the_identity_in_training():
    x = np.random.default_rng(1).normal(size=(50, 20)).astype(np.float32)
    assert np.array_equal(np.asarray(KerasDropout(0.0)(x, training=True)), x)


def test_keep_mask_is_honoured_and_matches_the_numpy_layer():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 30)).astype(np.float32)
    mask = rng.random(x.shape) >= 0.4
    ours = np.asarray(KerasDropout(0.4, seed=0)(x, training=True, keep_mask=mask))
    np.testing.assert_allclose(ours, Dropout(0.4)(x, mask=mask), rtol=1e-6)  # x / 0.6 or x * (1 / 0.6)
    assert np.array_equal(ours == 0, ~mask | (x == 0))


def test_keep_mask_broadcasts_like_noise_shape():
    x = np.ones((4, 6, 8), dtype=np.float32)
    mask = np.random.default_rng(3).random((4, 1, 8)) >= 0.5
    out = np.asarray(KerasDropout(0.5)(tf.constant(x), training=True, keep_mask=tf.constant(mask)))
    assert np.array_equal(out, np.broadcast_to(mask * 2.0, x.shape))


def test_keep_mask_is_ignored_in_inference():
    x = np.ones((3, 4), dtype=np.float32)
    assert np.array_equal(np.asarray(KerasDropout(0.5)(x, keep_mask=np.zeros((3, 4), bool))), x)


def test_gradient_is_the_mask_times_the_scale():
    rng = np.random.default_rng(4)
    x = tf.constant(rng.normal(size=(8, 5)).astype(np.float32))
    mask = rng.random((8, 5)) >= 0.25
    upstream = rng.normal(size=(8, 5)).astype(np.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(KerasDropout(0.25)(x, training=True, keep_mask=mask) * upstream)
    grad = tape.gradient(loss, x).numpy()
    numpy_layer = Dropout(0.25)
    numpy_layer(x.numpy(), mask=mask)
    np.testing.assert_allclose(grad, numpy_layer.backward(upstream), rtol=1e-6)


def test_random_draw_lets_gradients_through():
    x = tf.Variable(np.ones((100,), dtype=np.float32))
    with tf.GradientTape() as tape:
        out = KerasDropout(0.5, seed=5)(x, training=True)
        loss = tf.reduce_sum(out)
    grad = tape.gradient(loss, x).numpy()
    assert np.array_equal(grad, out.numpy())  # d(sum)/dx is the scaled mask, which on ones is the output itself


def test_noise_shape_shares_the_mask_along_size_one_axes():
    out = np.asarray(KerasDropout(0.5, noise_shape=(None, 1, 8), seed=1)(_ones((16, 6, 8)), training=True))
    assert np.all(out == out[:, :1, :])  # the same mask at every timestep
    assert 0 < (out == 0).mean() < 1


def test_works_inside_fit_and_survives_saving(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              KerasDropout(0.5, noise_shape=(None, 8), seed=2), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    history = model.fit(x, (x[:, 0] > 0).astype(int), epochs=2, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.layers[1], KerasDropout)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_get_config_round_trip():
    layer = KerasDropout(0.3, noise_shape=[None, 1], seed=9, name="ref")
    config = layer.get_config()
    assert (config["rate"], config["noise_shape"], config["seed"], config["name"]) == (0.3, (None, 1), 9, "ref")
    clone = KerasDropout.from_config(config)
    assert clone.get_config() == config
    x = _ones((20, 10))
    assert np.array_equal(np.asarray(clone(x, training=True)), np.asarray(layer(x, training=True)))


@pytest.mark.parametrize("rate, error", [(1.0, ValueError), (-0.1, ValueError), (1.5, ValueError),
                                         ("0.5", TypeError), (True, TypeError)])
def test_bad_rate_is_rejected(rate, error):
    with pytest.raises(error, match="rate"):
        KerasDropout(rate)


@pytest.mark.parametrize("noise_shape, error", [("abc", TypeError), (5, TypeError), ((None, 0), ValueError),
                                                ((None, 2.5), ValueError)])
def test_bad_noise_shape_is_rejected(noise_shape, error):
    with pytest.raises(error, match="noise_shape"):
        KerasDropout(0.5, noise_shape=noise_shape)


def test_noise_shape_that_does_not_fit_the_input_is_rejected():
    with pytest.raises(ValueError, match="noise_shape"):
        KerasDropout(0.5, noise_shape=(None, 3))(_ones((4, 5)), training=True)
    with pytest.raises(ValueError, match="axes"):
        KerasDropout(0.5, noise_shape=(None, 1, 1))(_ones((4, 5)), training=True)


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (1.5, TypeError), ("1", TypeError)])
def test_bad_seed_is_rejected(seed, error):
    with pytest.raises(error, match="seed"):
        KerasDropout(0.5, seed=seed)


def test_bad_keep_mask_is_rejected():
    layer = KerasDropout(0.5)
    with pytest.raises(TypeError, match="boolean"):
        layer(_ones((4, 5)), training=True, keep_mask=np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match="keep_mask has size 3"):
        layer(_ones((4, 5)), training=True, keep_mask=np.ones((4, 3), bool))
    with pytest.raises(ValueError, match="axes"):
        layer(_ones((4, 5)), training=True, keep_mask=np.ones((5,), bool))


def test_integer_inputs_are_rejected():
    with pytest.raises(TypeError, match="floating-point"):
        KerasDropout(0.5)(np.ones((3, 3), dtype=np.int32), training=True)


def test_layer_table_lists_layers_and_their_dropout_settings():
    model = make_keras_mlp(784, (16,), 10, drop_rate=0.3, max_norm=2.0, seed=0)
    table = layer_table(model)
    assert list(table.index) == ["hidden_1", "dropout_1", "output"]
    assert table.loc["hidden_1", "settings"] == "kernel_constraint=MaxNorm(2, axis=0)"
    assert table.loc["dropout_1", "settings"] == "rate=0.3"
    assert table.loc["output", "parameters"] == 16 * 10 + 10


def test_as_images():
    assert as_images(np.zeros((5, 784))).shape == (5, 28, 28, 1)
    assert as_images(np.zeros((2, 12)), image_shape=(3, 4)).shape == (2, 3, 4, 1)
    with pytest.raises(ValueError, match="784"):
        as_images(np.zeros((5, 100)))
    with pytest.raises(ValueError, match="image_shape"):
        as_images(np.zeros((5, 784)), image_shape=(28, 28, 1))


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
    out = KerasDropout(0.5, dtype="float64")(x, training=True, keep_mask=mask)
    assert keras.backend.standardize_dtype(out.dtype) == "float64"
    np.testing.assert_allclose(np.asarray(out), x * mask * 2.0, rtol=1e-15)
    drawn = KerasDropout(0.5, seed=1, dtype="float64")(x, training=True)
    assert keras.backend.standardize_dtype(drawn.dtype) == "float64"


# The Keras 3 behaviours the chapter teaches and asserts; a Keras upgrade that changes one fails here first.


def _small_data(n=64):
    rng = np.random.default_rng(8)
    x = rng.normal(2.0, 1.5, size=(n, 6)).astype(np.float32)
    return x, (x[:, 0] > 2).astype(int)


def test_fit_overrides_a_training_value_recorded_in_a_functional_model():
    inputs = keras.Input((1000,))
    always_on = keras.Model(inputs, keras.layers.Dropout(0.5, seed=1)(inputs, training=True))
    ones = _ones((1, 1000))
    assert (np.asarray(always_on(ones)) == 0).any()  # a plain call uses the recorded value
    assert not (always_on.predict(ones, verbose=0) == 0).any()  # predict states its own mode


@pytest.mark.parametrize("freeze, statistics_move", [("nothing", True), ("base", False), ("batch norm", False)])
def test_batch_norm_statistics_under_training_false_during_fine_tuning(freeze, statistics_move):
    x, y = _small_data()
    base = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4), keras.layers.BatchNormalization(name="bn")])
    base.trainable = freeze != "base"
    if freeze == "batch norm":
        base.get_layer("bn").trainable = False
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(base(inputs, training=False)))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    before = base.get_layer("bn").moving_mean.numpy().copy()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert (not np.array_equal(before, base.get_layer("bn").moving_mean.numpy())) is statistics_move


class _Dropping(keras.Model):
    def __init__(self, style: str) -> None:
        super().__init__()
        self.style = style
        self.dropout = keras.layers.Dropout(0.5, seed=3)

    def call(self, x, training=None):
        if self.style == "passed on":
            return self.dropout(x, training=training)
        if self.style == "left out":
            return self.dropout(x)
        return self._helper(x)

    def _helper(self, x, training=False):
        return self.dropout(x, training=training)


@pytest.mark.parametrize("style, on_in_training", [("passed on", True), ("left out", True), ("helper", False)])
def test_subclassed_model_mode_reaches_its_layers(style, on_in_training):
    model = _Dropping(style)
    ones = _ones((4, 100))
    assert bool((np.asarray(model(ones, training=True)) == 0).any()) is on_in_training
    assert not (np.asarray(model(ones, training=False)) == 0).any()


def test_a_compiled_model_inside_a_custom_layer_adds_a_second_loss_metric():
    class Holder(keras.layers.Layer):
        def __init__(self, inner, **kwargs):
            super().__init__(**kwargs)
            self.inner = inner

        def call(self, inputs):
            return self.inner(inputs)

    x, y = _small_data()
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2, activation="softmax")])
    inner.compile(loss="sparse_categorical_crossentropy")
    inputs = keras.Input((6,))
    outer = keras.Model(inputs, Holder(inner)(inputs))
    outer.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    reported = outer.fit(x, y, batch_size=len(x), epochs=1, verbose=0).history["loss"][0]
    assert [metric.name for metric in outer.metrics].count("loss") == 2
    assert reported == 0.0 and float(outer.metrics[0].result()) > 0.1


def test_minimal_dropout_draws_keras_masks_and_is_the_identity_in_inference():
    x = np.random.default_rng(0).normal(size=(32, 50)).astype(np.float32)
    minimal, builtin = MinimalDropout(0.3, seed=4), keras.layers.Dropout(0.3, seed=4)
    for _ in range(2):  # call after call, the same masks
        np.testing.assert_array_equal(np.asarray(minimal(x, training=True)),
                                      np.asarray(builtin(x, training=True)))
    np.testing.assert_array_equal(np.asarray(minimal(x)), x)
    np.testing.assert_array_equal(np.asarray(minimal(x, training=False)), x)
