"""The book's Keras model builders: a ReLU MLP and a small CNN, with dropout where asked, and one compile helper.

The builders take the argument convention of `utils.torch_models`: sizes first, then keyword-only drop rates that
default to 0 (no dropout layer at all), then Keras's extras (`max_norm`, `seed`). They return uncompiled
``keras.Sequential`` models whose last layer is a softmax (a sigmoid for a one-unit MLP output); `compile_classifier`
compiles one for integer labels. Call `utils.setup()` before importing this module: it sets the Keras backend.

With an integer `seed`, every layer's initial weights and every dropout layer's masks come from their own stream
derived from that seed, so two models built with the same seed start from the same weights whatever their drop
rates, and only dropout differs between them. With ``seed=None`` they come from Keras's global random stream.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from utils.checks import check_count, check_positive, check_rate, check_seed, check_sizes

DOWNSAMPLING = ("pool", "stride")


class _Seeds:
    """Per-layer seeds derived from one checked seed (independent streams, each below 2**31), or None everywhere."""

    def __init__(self, seed: int | None, n: int) -> None:
        states = [] if seed is None else np.random.SeedSequence(seed).generate_state(n)
        self._seeds = [int(state) % 2**31 for state in states]

    def __getitem__(self, index: int) -> int | None:
        return self._seeds[index] if self._seeds else None

    def kernel(self, index: int) -> keras.initializers.GlorotUniform:
        """Keras's default kernel initializer, seeded with seed number `index`."""
        return keras.initializers.GlorotUniform(seed=self[index])


def make_keras_mlp(n_in: int, hidden: Sequence[int], n_out: int, *, drop_rate: float = 0.0,
                   input_drop_rate: float = 0.0, max_norm: float | None = None,
                   seed: int | None = None) -> keras.Sequential:
    """Build a Keras ReLU MLP with dropout `input_drop_rate` on its inputs and `drop_rate` after each hidden layer.

    The layers are [Dropout(input_drop_rate)] `input_dropout`, then per hidden width a ReLU Dense `hidden_<i>` and
    [Dropout(drop_rate)] `dropout_<i>`, then `output`: a softmax over `n_out` classes, or one sigmoid unit when
    `n_out` is 1 (a binary task). A rate of 0 leaves its dropout layers out. `max_norm` caps every hidden unit's
    incoming weight vector with ``MaxNorm(max_norm, axis=0)``. The model is not compiled (see `compile_classifier`).
    Chapters: keras_dropout, tutorials_offline
    """
    n_in, n_out = check_count(n_in, "n_in"), check_count(n_out, "n_out")
    hidden = check_sizes(hidden, "hidden", allow_empty=True)
    drop_rate, input_drop_rate = check_rate(drop_rate), check_rate(input_drop_rate)
    constraint = None if max_norm is None else keras.constraints.MaxNorm(check_positive(max_norm, "max_norm"), axis=0)
    n = len(hidden)
    seed = None if seed is None else check_seed(seed)
    seeds = _Seeds(seed, 2 * n + 2)  # hidden kernels, output kernel, hidden dropout masks, input dropout masks
    layers: list[keras.layers.Layer] = [keras.Input((n_in,))]
    if input_drop_rate:
        layers.append(keras.layers.Dropout(input_drop_rate, seed=seeds[2 * n + 1], name="input_dropout"))
    for i, width in enumerate(hidden):
        layers.append(keras.layers.Dense(width, activation="relu", kernel_constraint=constraint,
                                         kernel_initializer=seeds.kernel(i), name=f"hidden_{i + 1}"))
        if drop_rate:
            layers.append(keras.layers.Dropout(drop_rate, seed=seeds[n + 1 + i], name=f"dropout_{i + 1}"))
    layers.append(keras.layers.Dense(n_out, activation="sigmoid" if n_out == 1 else "softmax",
                                     kernel_initializer=seeds.kernel(n), name="output"))
    return keras.Sequential(layers, name="mlp")


def make_keras_cnn(n_classes: int, *, drop_rate: float = 0.0, spatial_drop_rate: float = 0.0,
                   filters: Sequence[int] = (16, 32), downsample: str = "pool",
                   image_shape: Sequence[int] = (28, 28, 1), seed: int | None = None) -> keras.Sequential:
    """Build a small Keras CNN for channels-last images: convolution blocks, then dropout `drop_rate` and a softmax.

    Each block is a 3x3 ReLU convolution `conv_<i>` with `filters[i]` filters, [SpatialDropout2D(spatial_drop_rate)]
    `spatial_dropout_<i>`, and a halving of the image: 2x2 max-pooling `pool_<i>` after a stride-1 convolution when
    `downsample` is "pool", or a stride-2 convolution (a quarter of the cost, no pooling layer) when it is "stride".
    Then `flatten`, [Dropout(drop_rate)] `dropout` and the softmax layer `output`. A rate of 0 leaves its dropout
    layers out. The model is not compiled (see `compile_classifier`).
    Chapters: keras_dropout, tutorials_offline
    """
    n_classes = check_count(n_classes, "n_classes", minimum=2)
    drop_rate, spatial_drop_rate = check_rate(drop_rate), check_rate(spatial_drop_rate)
    filters = check_sizes(filters, "filters")
    if downsample not in DOWNSAMPLING:
        raise ValueError(f"downsample must be one of {DOWNSAMPLING}, got {downsample!r}")
    image_shape = tuple(check_sizes(image_shape, "image_shape"))
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (height, width, channels), got {image_shape!r}")
    n = len(filters)
    seed = None if seed is None else check_seed(seed)
    seeds = _Seeds(seed, 2 * n + 2)  # conv kernels, output kernel, dropout masks, spatial dropout masks
    stride = 2 if downsample == "stride" else 1
    layers: list[keras.layers.Layer] = [keras.Input(image_shape)]
    for i, width in enumerate(filters):
        layers.append(keras.layers.Conv2D(width, 3, strides=stride, activation="relu",
                                          kernel_initializer=seeds.kernel(i), name=f"conv_{i + 1}"))
        if spatial_drop_rate:
            layers.append(keras.layers.SpatialDropout2D(spatial_drop_rate, seed=seeds[n + 2 + i],
                                                        name=f"spatial_dropout_{i + 1}"))
        if downsample == "pool":
            layers.append(keras.layers.MaxPooling2D(2, name=f"pool_{i + 1}"))
    layers.append(keras.layers.Flatten(name="flatten"))
    if drop_rate:
        layers.append(keras.layers.Dropout(drop_rate, seed=seeds[n + 1], name="dropout"))
    layers.append(keras.layers.Dense(n_classes, activation="softmax", kernel_initializer=seeds.kernel(n),
                                     name="output"))
    return keras.Sequential(layers, name="cnn")


def compile_classifier(model: keras.Model, optimizer: keras.optimizers.Optimizer | str) -> keras.Model:
    """Compile `model` for integer class labels with `optimizer` and an accuracy metric; return the model.

    The loss is sparse categorical cross-entropy for a softmax output, binary cross-entropy for one sigmoid unit.
    Chapter: keras_dropout
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    if not isinstance(optimizer, (str, keras.optimizers.Optimizer)):
        raise TypeError(f"optimizer must be a keras.optimizers.Optimizer or an optimizer's name, "
                        f"got {type(optimizer).__name__}: {optimizer!r}")
    loss = "binary_crossentropy" if model.output_shape[-1] == 1 else "sparse_categorical_crossentropy"
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model
