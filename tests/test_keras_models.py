"""The Keras model builders: dropout where their docstrings put it, seeded weights, uncompiled models, clear errors."""

import keras
import numpy as np
import pytest

from utils.keras_models import compile_classifier, make_keras_cnn, make_keras_mlp


def _kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def _same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))


def test_mlp_places_dropout_on_the_inputs_and_after_each_hidden_layer():
    model = make_keras_mlp(6, [5, 4], 3, drop_rate=0.5, input_drop_rate=0.2, max_norm=3.0, seed=2)
    assert _kinds(model) == ["Dropout", "Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert [layer.name for layer in model.layers] == [
        "input_dropout", "hidden_1", "dropout_1", "hidden_2", "dropout_2", "output"]
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.2, 0.5, 0.5]
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [5, 4, 3]
    for name in ("hidden_1", "hidden_2"):
        constraint = model.get_layer(name).kernel_constraint
        assert isinstance(constraint, keras.constraints.MaxNorm) and (constraint.max_value, constraint.axis) == (3, 0)
    assert model.get_layer("output").kernel_constraint is None
    assert model.get_layer("output").activation.__name__ == "softmax"
    assert not model.compiled


def test_mlp_rates_of_zero_leave_the_dropout_layers_out_and_one_output_is_a_sigmoid():
    assert _kinds(make_keras_mlp(6, [5], 3)) == ["Dense", "Dense"]
    assert _kinds(make_keras_mlp(6, [], 3, drop_rate=0.5)) == ["Dense"]
    binary = make_keras_mlp(6, [5], 1)
    assert binary.get_layer("output").activation.__name__ == "sigmoid"
    assert binary.get_layer("hidden_1").kernel_constraint is None


def test_mlp_seed_fixes_the_weights_whatever_the_rates():
    plain = make_keras_mlp(6, [5, 4], 3, seed=2)
    dropped = make_keras_mlp(6, [5, 4], 3, drop_rate=0.5, input_drop_rate=0.2, max_norm=3.0, seed=2)
    assert _same_weights(plain, dropped)
    assert not np.array_equal(plain.get_weights()[0], make_keras_mlp(6, [5, 4], 3, seed=3).get_weights()[0])
    x = np.ones((4, 6), np.float32)
    masks = [np.asarray(make_keras_mlp(6, [50], 2, drop_rate=0.5, seed=4).get_layer("dropout_1")(
        np.ones((4, 50), np.float32), training=True)) for _ in range(2)]
    assert np.array_equal(*masks)  # the same seed draws the same dropout masks
    assert dropped(x).shape == (4, 3)


def test_cnn_with_pooling_and_spatial_dropout():
    model = make_keras_cnn(10, drop_rate=0.5, spatial_drop_rate=0.2, filters=(4, 8), seed=1)
    assert [layer.name for layer in model.layers] == [
        "conv_1", "spatial_dropout_1", "pool_1", "conv_2", "spatial_dropout_2", "pool_2", "flatten", "dropout",
        "output"]
    assert _kinds(model).count("SpatialDropout2D") == 2 and _kinds(model).count("Dropout") == 1
    assert model.get_layer("spatial_dropout_1").rate == 0.2 and model.get_layer("dropout").rate == 0.5
    assert all(layer.strides == (1, 1) for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    probs = np.asarray(model(np.zeros((3, 28, 28, 1), np.float32)))
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert not model.compiled


def test_cnn_with_strided_convolutions_has_no_pooling():
    model = make_keras_cnn(10, drop_rate=0.5, filters=(4, 8), downsample="stride", seed=1)
    assert _kinds(model) == ["Conv2D", "Conv2D", "Flatten", "Dropout", "Dense"]
    assert all(layer.strides == (2, 2) for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert model.get_layer("conv_2").output.shape == (None, 6, 6, 8)  # 28 -> 13 -> 6
    assert model(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)


def test_cnn_seed_fixes_the_weights_whatever_the_rates():
    plain = make_keras_cnn(10, seed=1)
    dropped = make_keras_cnn(10, drop_rate=0.5, spatial_drop_rate=0.3, seed=1)
    assert _kinds(plain) == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert _same_weights(plain, dropped)
    assert not _same_weights(plain, make_keras_cnn(10, seed=2))
    # the dropout layer's seed does not depend on whether there is spatial dropout
    with_spatial, without = make_keras_cnn(10, drop_rate=0.5, spatial_drop_rate=0.3, seed=1), make_keras_cnn(
        10, drop_rate=0.5, seed=1)
    ones = np.ones((2, 64), np.float32)
    assert np.array_equal(np.asarray(with_spatial.get_layer("dropout")(ones, training=True)),
                          np.asarray(without.get_layer("dropout")(ones, training=True)))


def test_cnn_takes_other_image_shapes():
    model = make_keras_cnn(3, filters=(4,), image_shape=(12, 10, 2))
    assert model(np.zeros((2, 12, 10, 2), np.float32)).shape == (2, 3)


@pytest.mark.parametrize("call, error, match", [
    (lambda: make_keras_mlp(0, [4], 3), ValueError, "n_in"),
    (lambda: make_keras_mlp(6, [0], 3), ValueError, "hidden"),
    (lambda: make_keras_mlp(6, 4, 3), TypeError, "hidden"),
    (lambda: make_keras_mlp(6, [4], 3, drop_rate=1.0), ValueError, "rate"),
    (lambda: make_keras_mlp(6, [4], 3, input_drop_rate=-0.5), ValueError, "rate"),
    (lambda: make_keras_mlp(6, [4], 3, max_norm=0.0), ValueError, "max_norm"),
    (lambda: make_keras_mlp(6, [4], 3, max_norm="3"), TypeError, "max_norm"),
    (lambda: make_keras_mlp(6, [4], 3, seed=-1), ValueError, "seed"),
    (lambda: make_keras_mlp(6, [4], 3, seed=1.5), TypeError, "seed"),
    (lambda: make_keras_cnn(1), ValueError, "n_classes"),
    (lambda: make_keras_cnn(10, filters=(8, 0)), ValueError, "filters"),
    (lambda: make_keras_cnn(10, filters=()), ValueError, "filters"),
    (lambda: make_keras_cnn(10, spatial_drop_rate=1.0), ValueError, "rate"),
    (lambda: make_keras_cnn(10, downsample="average"), ValueError, "downsample"),
    (lambda: make_keras_cnn(10, image_shape=(28, 28)), ValueError, "image_shape"),
    (lambda: make_keras_cnn(10, image_shape=(28, 0, 1)), ValueError, "image_shape"),
])
def test_builders_reject_bad_arguments_clearly(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_compile_classifier_picks_the_loss_from_the_output():
    softmax = compile_classifier(make_keras_mlp(4, [3], 3, seed=0), keras.optimizers.RMSprop())
    assert isinstance(softmax.optimizer, keras.optimizers.RMSprop) and softmax.loss == "sparse_categorical_crossentropy"
    sigmoid = compile_classifier(make_keras_mlp(4, [3], 1, seed=0), "sgd")
    assert sigmoid.loss == "binary_crossentropy"
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    history = softmax.fit(x, np.arange(16) % 3, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    with pytest.raises(TypeError, match="optimizer"):
        compile_classifier(make_keras_mlp(4, [3], 3), 0.1)
    with pytest.raises(TypeError, match="keras.Model"):
        compile_classifier(keras.layers.Dense(3), "sgd")
