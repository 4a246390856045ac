"""Dropout in Keras 3: the book's re-implementation of inverted dropout as a Keras layer.

`KerasDropout` does what `keras.layers.Dropout` does, written out with `keras.random` and `keras.ops`, and it can
take the keep mask from the caller, so that NumPy, Keras and PyTorch can be fed one and the same mask. Call
`utils.setup()` before importing this module: it sets the Keras backend. The Keras model builders are in
`utils.keras_models`; the Keras chapter's inspection helpers in `utils.chapters.keras_dropout`.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import keras
from keras import ops

from utils.checks import check_rate, check_seed

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
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        raise TypeError(f"dropout needs floating-point inputs, got dtype {dtype}")
    return inputs


def _check_broadcastable(shape: Sequence[int | None], input_shape: Sequence[int | None], what: str) -> None:
    """Raise ValueError unless `shape` has the input's rank and each known size is 1 or the input's size."""
    if len(shape) != len(input_shape):
        raise ValueError(f"{what} has {len(shape)} axes, the input has {len(input_shape)} "
                         f"(input shape {tuple(input_shape)}); give one size per input axis, 1 to share the mask")
    for axis, (size, input_size) in enumerate(zip(shape, input_shape, strict=True)):
        if isinstance(size, int) and isinstance(input_size, int) and size not in (1, input_size):
            raise ValueError(f"{what} has size {size} on axis {axis}, where the input has {input_size}; "
                             f"use 1 (one mask value shared along the axis) or {input_size}")


@keras.saving.register_keras_serializable(package="dropout_in_depth")
class KerasDropout(keras.layers.Layer):
    """Inverted dropout written out with keras.random: zero each unit with probability `rate`, scale the rest.

    In training (`training=True`) each element is kept with probability 1 - rate and the kept ones are multiplied
    by 1/(1 - rate); otherwise the layer is the identity. `noise_shape` works as in `keras.layers.Dropout`: one size
    per input axis, None for the input's size, 1 to share one mask value along that axis. `seed` seeds the layer's
    own `keras.random.SeedGenerator`. A `keep_mask` passed to `call` (boolean, True = keep, the input's rank, each
    size 1 or the input's) replaces the random draw. A rate of 1, which Keras's own layer accepts, is rejected.
    On the TensorFlow backend, a layer and a `keras.layers.Dropout` with the same seed draw the same masks, call
    after call; given a mask, the forward pass and the input gradient equal those of the NumPy layer
    `utils.dropout.Dropout` (both checked in tests/test_keras_dropout.py, which three_frameworks relies on).
    Chapters: keras_dropout, three_frameworks
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
            shape = tuple(size if noise is None else noise for noise, size in
                          zip(self.noise_shape, input_shape, strict=True))
        uniform = keras.random.uniform(shape, dtype=inputs.dtype, seed=self.seed_generator)
        return uniform >= self.rate

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Dropout keeps the input's shape."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments, so that `from_config` (and model saving) can rebuild the layer."""
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}
