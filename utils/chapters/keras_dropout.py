"""Helpers of the Keras chapter: images for Conv2D, a bound on the dropped fraction, and what a model holds.

The chapter's dropout layer, `KerasDropout`, is in `utils.keras_dropout`; its models come from `utils.keras_models`.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import pandas as pd

from utils.checks import check_count, check_positive, check_rate, check_sizes


def as_images(x: np.ndarray, image_shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Reshape flat rows (n, h*w) to the (n, h, w, 1) channels-last images Keras's Conv2D expects.

    Chapter: keras_dropout
    """
    x = np.asarray(x)
    sizes = check_sizes(image_shape, "image_shape")
    if len(sizes) != 2:
        raise ValueError(f"image_shape must be (height, width), got {image_shape!r}")
    height, width = sizes
    if x.ndim != 2 or x.shape[1] != height * width:
        raise ValueError(f"expected flat rows of {height}x{width} = {height * width} pixels, shape "
                         f"(n, {height * width}); got shape {x.shape}")
    return x.reshape(len(x), height, width, 1)


def kernel_column_norms(layer: keras.layers.Layer) -> np.ndarray:
    """Return the L2 norm of each unit's incoming weight vector: the column norms of a Dense (in, out) kernel.

    Chapter: keras_dropout
    """
    kernel = getattr(layer, "kernel", None)
    if kernel is None or len(kernel.shape) != 2:
        raise TypeError(f"expected a built Dense layer with an (inputs, units) kernel, got {type(layer).__name__}")
    return np.linalg.norm(kernel.numpy(), axis=0)


def zero_fraction_bound(n: int, rate: float, n_sigma: float = 5.0) -> float:
    """Return n_sigma binomial standard deviations of the zeroed fraction of `n` independent units at `rate`.

    Chapter: keras_dropout
    """
    n = check_count(n, "n")
    rate = check_rate(rate)
    return check_positive(n_sigma, "n_sigma") * math.sqrt(rate * (1.0 - rate) / n)


def layer_table(model: keras.Model) -> pd.DataFrame:
    """Return one row per layer: its name, class, output shape, parameter count and dropout settings.

    Chapter: keras_dropout
    """
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


class MinimalDropout(keras.layers.Layer):
    """Inverted dropout as a minimal custom Keras layer: the lesson of the chapter's last section.

    Chapter: keras_dropout
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.rate = rate
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training:
            return inputs
        shape = keras.ops.shape(inputs)
        uniform = keras.random.uniform(shape, seed=self.seed_generator)
        keep = uniform >= self.rate  # kept with probability 1 - rate
        return keras.ops.where(keep, inputs * (1 / (1 - self.rate)), 0.0)
