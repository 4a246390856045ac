"""Dropout in Keras 3: a reference re-implementation of inverted dropout as a Keras layer, and the chapter's models.

`ReferenceDropout` does what `keras.layers.Dropout` does, written out with `keras.random` and `keras.ops`, and it
can take the keep mask from the caller, so that NumPy, Keras and PyTorch can be fed one and the same mask.
The model builders return compiled models: the classic Keras MNIST MLP and a small CNN with spatial dropout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import keras  # importing the utils package first has set the Keras backend
import numpy as np
import pandas as pd
from keras import ops

from utils.checks import check_count, check_rate, check_seed

NoiseShape = tuple[int | None, ...]


def _check_noise_shape(noise_shape: Sequence[int | None] | None) -> NoiseShape | None:
    """Return `noise_shape` as a tuple of positive ints and Nones, or None; raise a clear error otherwise."""
    if noise_shape is None:
        return None
    if isinstance(noise_shape, (str, bytes)) or not isinstance(noise_shape, Sequence):
        raise TypeError(f"noise_shape must be a tuple of positive integers or None (one per input axis), "
                        f"got {type(noise_shape).__name__}: {noise_shape!r}")
    checked = []
    for axis, size in enumerate(noise_shape):
        if size is None:
            checked.append(None)
        elif isinstance(size, bool) or not isinstance(size, Integral) or size < 1:
            raise ValueError(f"noise_shape[{axis}] must be a positive integer or None, got {size!r}")
        else:
            checked.append(int(size))
    return tuple(checked)


def _check_floating(inputs: Any) -> Any:
    """Return `inputs` as a backend tensor if it has a floating-point dtype; raise TypeError otherwise."""
    inputs = ops.convert_to_tensor(inputs)
    if not keras.backend.is_float_dtype(inputs.dtype):
        raise TypeError(f"dropout needs floating-point inputs, got dtype {keras.backend.standardize_dtype(inputs.dtype)}")
    return inputs


def _check_broadcastable(shape: Sequence[int | None], input_shape: Sequence[int | None], what: str) -> None:
    """Raise ValueError unless `shape` has the input's rank and each known size is 1 or the input's size."""
    if len(shape) != len(input_shape):
        raise ValueError(f"{what} has {len(shape)} axes, the input has {len(input_shape)} "
                         f"(input shape {tuple(input_shape)}); give one size per input axis, 1 to share the mask")
    for axis, (size, input_size) in enumerate(zip(shape, input_shape)):
        if isinstance(size, int) and isinstance(input_size, int) and size not in (1, input_size):
            raise ValueError(f"{what} has size {size} on axis {axis}, where the input has {input_size}; "
                             f"use 1 (one mask value shared along the axis) or {input_size}")


@keras.saving.register_keras_serializable(package="dropout_in_depth")
class ReferenceDropout(keras.layers.Layer):
    """Inverted dropout written out with keras.random: zero each unit with probability `rate`, scale the rest.

    In training (`training=True`) each element is kept with probability 1 - rate and the kept ones are multiplied
    by 1/(1 - rate); otherwise the layer is the identity. `noise_shape` works as in `keras.layers.Dropout`: one size
    per input axis, None for the input's size, 1 to share one mask value along that axis. `seed` seeds the layer's
    own `keras.random.SeedGenerator`. A `keep_mask` passed to `call` (boolean, True = keep, the input's rank, each
    size 1 or the input's) replaces the random draw. A rate of 1, which Keras's own layer accepts, is rejected.
    """

    def __init__(self, rate: float, noise_shape: Sequence[int | None] | None = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = check_rate(rate)
        self.noise_shape = _check_noise_shape(noise_shape)
        self.seed = None if seed is None else check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.supports_masking = True
        self.built = True  # no weights to create; the seed generator's state is made above

    def call(self, inputs: Any, training: bool | None = None, keep_mask: Any = None) -> Any:
        """Apply dropout in training mode (with `keep_mask` as the mask if given); return the inputs otherwise."""
        inputs = _check_floating(inputs)
        if not training or self.rate == 0.0:
            return inputs
        input_shape = tuple(ops.shape(inputs))
        if keep_mask is None:
            keep_mask = self._draw_keep_mask(inputs, input_shape)
        else:
            keep_mask = ops.convert_to_tensor(keep_mask)
            if keras.backend.standardize_dtype(keep_mask.dtype) != "bool":
                raise TypeError(f"keep_mask must be a boolean array (True = keep), "
                                f"got dtype {keras.backend.standardize_dtype(keep_mask.dtype)}")
            _check_broadcastable(tuple(ops.shape(keep_mask)), input_shape, "keep_mask")
        # The same arithmetic as the NumPy layer: the mask as 0/1 times the scale, then times the inputs.
        scaled_mask = ops.cast(keep_mask, inputs.dtype) * (1.0 / (1.0 - self.rate))
        return inputs * scaled_mask

    def _draw_keep_mask(self, inputs: Any, input_shape: tuple) -> Any:
        """Draw the boolean keep mask: a uniform number per mask entry, kept when it is >= rate."""
        shape = input_shape
        if self.noise_shape is not None:
            _check_broadcastable(self.noise_shape, input_shape, "noise_shape")
            shape = tuple(size if noise is None else noise for noise, size in zip(self.noise_shape, input_shape))
        uniform = keras.random.uniform(shape, dtype=inputs.dtype, seed=self.seed_generator)
        return uniform >= self.rate

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Dropout keeps the input's shape."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments, so that `from_config` (and model saving) can rebuild the layer."""
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}


# --- models ------------------------------------------------------------------------------


def _check_widths(widths: Sequence[int], name: str) -> list[int]:
    """Return `widths` as a non-empty list of positive ints; raise a clear error otherwise."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
        raise ValueError(f"{name} must be a non-empty sequence of positive integers, got {widths!r}")
    return [check_count(width, f"every entry of {name}") for width in widths]


def _layer_seed(seed: int | None, index: int) -> int | None:
    """A distinct seed for the `index`-th random layer of a model, or None when the model is unseeded."""
    return None if seed is None else check_seed(seed) + index


def classic_mlp(drop_rate: float = 0.2, *, hidden: Sequence[int] = (512, 512), n_inputs: int = 784,
                n_classes: int = 10, max_norm: float | None = None,
                optimizer: keras.optimizers.Optimizer | str | None = None,
                seed: int | None = None) -> keras.Sequential:
    """Build and compile the classic Keras MNIST MLP: Dense-ReLU layers, each followed by Dropout(drop_rate).

    The defaults are the Keras example's (two layers of 512, rate 0.2, a softmax output, `RMSprop()` when `optimizer`
    is None). A rate of 0 leaves the Dropout layers out. `max_norm` caps each hidden unit's incoming weight vector
    with `MaxNorm(max_norm, axis=0)`. `seed` seeds the Dropout layers. The loss is sparse categorical cross-entropy,
    for integer labels.
    """
    check_rate(drop_rate)
    hidden = _check_widths(hidden, "hidden")
    n_inputs, n_classes = check_count(n_inputs, "n_inputs"), check_count(n_classes, "n_classes", minimum=2)
    constraint = None if max_norm is None else keras.constraints.MaxNorm(_check_positive(max_norm, "max_norm"),
                                                                           axis=0)
    layers: list[keras.layers.Layer] = [keras.Input((n_inputs,))]
    for index, width in enumerate(hidden):
        layers.append(keras.layers.Dense(width, activation="relu", kernel_constraint=constraint,
                                         name=f"hidden_{index + 1}"))
        if drop_rate:
            layers.append(keras.layers.Dropout(drop_rate, seed=_layer_seed(seed, index),
                                               name=f"dropout_{index + 1}"))
    layers.append(keras.layers.Dense(n_classes, activation="softmax", name="output"))
    model = keras.Sequential(layers, name="classic_mlp" if drop_rate else "classic_mlp_no_dropout")
    if optimizer is None:
        optimizer = keras.optimizers.RMSprop()
    elif not isinstance(optimizer, (str, keras.optimizers.Optimizer)):
        raise TypeError(f"optimizer must be a keras.optimizers.Optimizer, an optimizer name or None (RMSprop), "
                        f"got {type(optimizer).__name__}")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def small_cnn(spatial_rate: float = 0.2, drop_rate: float = 0.5, *, filters: Sequence[int] = (16, 32),
              image_shape: tuple[int, int, int] = (28, 28, 1), n_classes: int = 10, learning_rate: float = 1e-3,
              seed: int | None = None) -> keras.Sequential:
    """Build and compile a small CNN: per block Conv2D 3x3-ReLU, SpatialDropout2D, 2x2 max-pooling; then Dropout, softmax.

    A rate of 0 leaves that kind of dropout layer out. Adam at `learning_rate`, sparse categorical cross-entropy.
    """
    check_rate(spatial_rate)
    check_rate(drop_rate)
    filters = _check_widths(filters, "filters")
    if (not isinstance(image_shape, tuple) or len(image_shape) != 3
            or not all(isinstance(s, Integral) and s >= 1 for s in image_shape)):
        raise ValueError(f"image_shape must be a (height, width, channels) tuple of positive ints, got {image_shape!r}")
    layers: list[keras.layers.Layer] = [keras.Input(image_shape)]
    for index, width in enumerate(filters):
        layers.append(keras.layers.Conv2D(width, 3, activation="relu", name=f"conv_{index + 1}"))
        if spatial_rate:
            layers.append(keras.layers.SpatialDropout2D(spatial_rate, seed=_layer_seed(seed, index),
                                                        name=f"spatial_dropout_{index + 1}"))
        layers.append(keras.layers.MaxPooling2D(2, name=f"pool_{index + 1}"))
    layers.append(keras.layers.Flatten(name="flatten"))
    if drop_rate:
        layers.append(keras.layers.Dropout(drop_rate, seed=_layer_seed(seed, len(filters)), name="dropout"))
    layers.append(keras.layers.Dense(check_count(n_classes, "n_classes", minimum=2), activation="softmax",
                                     name="output"))
    model = keras.Sequential(layers, name="small_cnn")
    model.compile(optimizer=keras.optimizers.Adam(_check_positive(learning_rate, "learning_rate")),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _check_positive(value: float, name: str) -> float:
    """Return `value` as a float if it is a positive real number; raise a clear error otherwise."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a positive real number, got {type(value).__name__}: {value!r}")
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


# --- inspection --------------------------------------------------------------------------


def as_images(x: np.ndarray, image_shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Reshape flat rows (n, h*w) to the (n, h, w, 1) channels-last images Keras's Conv2D expects."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != image_shape[0] * image_shape[1]:
        raise ValueError(f"expected flat rows of {image_shape[0]}x{image_shape[1]} = {image_shape[0] * image_shape[1]} "
                         f"pixels, shape (n, {image_shape[0] * image_shape[1]}); got shape {x.shape}")
    return x.reshape(len(x), *image_shape, 1)


def kernel_column_norms(layer: keras.layers.Layer) -> np.ndarray:
    """Return the L2 norm of each unit's incoming weight vector: the column norms of a Dense (in, out) kernel."""
    kernel = getattr(layer, "kernel", None)
    if kernel is None or len(kernel.shape) != 2:
        raise TypeError(f"expected a built Dense layer with an (inputs, units) kernel, got {type(layer).__name__}")
    return np.linalg.norm(kernel.numpy(), axis=0)


def zero_fraction_bound(n: int, rate: float, n_sigma: float = 5.0) -> float:
    """Return n_sigma binomial standard deviations of the zeroed fraction of `n` independent units at `rate`."""
    n = check_count(n, "n")
    rate = check_rate(rate)
    return _check_positive(n_sigma, "n_sigma") * math.sqrt(rate * (1.0 - rate) / n)


def layer_table(model: keras.Model) -> pd.DataFrame:
    """Return one row per layer: its name, class, output shape, parameter count and dropout settings."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    rows = []
    for layer in model.layers:
        settings = {key: getattr(layer, key) for key in ("rate", "noise_shape") if getattr(layer, key, None)}
        constraint = getattr(layer, "kernel_constraint", None)
        if isinstance(constraint, keras.constraints.MaxNorm):
            settings["kernel_constraint"] = f"MaxNorm({constraint.max_value:g}, axis={constraint.axis})"
        rows.append({"layer": layer.name, "class": type(layer).__name__,
                     "output shape": str(tuple(layer.output.shape)), "parameters": layer.count_params(),
                     "settings": ", ".join(f"{key}={value}" for key, value in settings.items())})
    return pd.DataFrame(rows).set_index("layer")
