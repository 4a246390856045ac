"""Plumbing for the chapter that reruns the popular Keras dropout tutorials fairly: seeded Keras models, fresh runs
without re-tracing, and k-fold cross-validation with the standardisation fitted inside each fold.

Keras turns a compiled model's training step into a TensorFlow graph the first time `fit` runs, which costs about a
second on a laptop CPU. A k-fold experiment that builds a new model per fold pays that again and again.
`KerasRunner` compiles one model per architecture and, before each run, copies in the state of a newly built model
with the run's seed (weights, dropout seed states) and the optimizer's starting state, so that every run is the
same as on a brand-new model with that seed, without tracing again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from utils.checks import check_count, check_rate, check_seed
from utils.seeding import seed_everything

Split = tuple[np.ndarray, np.ndarray]
History = dict[str, list[float]]


def _keras():
    """Import Keras on first use, so that importing this module stays cheap."""
    import keras

    return keras


def _layer_seeds(seed: int, n: int) -> list[int]:
    """`n` independent seeds below 2**31 drawn from `seed`, one per random layer part (weights, dropout masks)."""
    return [int(v) % 2**31 for v in np.random.SeedSequence(seed).generate_state(n)]


def _check_sizes(sizes: Sequence[int], name: str) -> list[int]:
    """Return `sizes` as a list of ints >= 1, or raise."""
    return [check_count(n, name) for n in sizes]


def build_mlp(n_in: int, hidden: Sequence[int], n_out: int, *, drop_rate: float = 0.0, input_drop_rate: float = 0.0,
              max_norm: float | None = None, seed: int = 0) -> Any:
    """A Keras ReLU MLP with input and hidden dropout, optional max-norm on hidden weights, and seeded initial weights.

    One output unit means a sigmoid output (binary task); more mean a softmax. Equal seeds give equal weights and
    equal dropout masks whatever the rates, so runs with and without dropout start from the same weights.
    """
    keras = _keras()
    n_in, n_out = check_count(n_in, "n_in"), check_count(n_out, "n_out")
    hidden = _check_sizes(hidden, "every hidden layer size")
    check_rate(drop_rate)
    check_rate(input_drop_rate)
    seed = check_seed(seed)
    if max_norm is not None and not max_norm > 0:
        raise ValueError(f"max_norm must be positive or None, got {max_norm!r}")
    constraint = keras.constraints.MaxNorm(max_norm) if max_norm is not None else None
    seeds = _layer_seeds(seed, 2 * len(hidden) + 2)  # weights of each Dense layer, then each dropout layer's masks
    layers: list[Any] = [keras.Input((n_in,))]
    if input_drop_rate:
        layers.append(keras.layers.Dropout(input_drop_rate, seed=seeds[-1]))
    for i, width in enumerate(hidden):
        layers.append(keras.layers.Dense(width, activation="relu", kernel_constraint=constraint,
                                         kernel_initializer=keras.initializers.GlorotUniform(seed=seeds[i])))
        if drop_rate:
            layers.append(keras.layers.Dropout(drop_rate, seed=seeds[len(hidden) + 1 + i]))
    layers.append(keras.layers.Dense(n_out, activation="sigmoid" if n_out == 1 else "softmax",
                                     kernel_initializer=keras.initializers.GlorotUniform(seed=seeds[len(hidden)])))
    return keras.Sequential(layers)


def build_cnn(n_classes: int = 10, *, drop_rate: float = 0.0, filters: Sequence[int] = (16, 32), seed: int = 0) -> Any:
    """A small Keras CNN for 28x28x1 images: 3x3 ReLU convolutions with stride 2, then dropout and a softmax layer."""
    keras = _keras()
    n_classes = check_count(n_classes, "n_classes", minimum=2)
    filters = _check_sizes(filters, "every filter count")
    check_rate(drop_rate)
    seed = check_seed(seed)
    seeds = _layer_seeds(seed, len(filters) + 2)  # weights of each layer, then the dropout masks
    layers: list[Any] = [keras.Input((28, 28, 1))]
    for i, n in enumerate(filters):  # stride 2 halves the image each time, as pooling would, at a quarter of the cost
        layers.append(keras.layers.Conv2D(n, 3, strides=2, activation="relu",
                                          kernel_initializer=keras.initializers.GlorotUniform(seed=seeds[i])))
    layers.append(keras.layers.Flatten())
    if drop_rate:
        layers.append(keras.layers.Dropout(drop_rate, seed=seeds[-1]))
    layers.append(keras.layers.Dense(n_classes, activation="softmax",
                                     kernel_initializer=keras.initializers.GlorotUniform(seed=seeds[len(filters)])))
    return keras.Sequential(layers)


class KerasRunner:
    """One compiled Keras model that starts every `fit` from the state of `build(seed)`: fresh runs, traced once."""

    def __init__(self, build: Callable[[int], Any], *, optimizer: Callable[[], Any], loss: str,
                 metrics: Sequence[str] = ("accuracy",)) -> None:
        if not callable(build) or not callable(optimizer):
            raise TypeError("build must be a function seed -> Keras model, and optimizer a function -> optimizer")
        self.build = build
        self.model = build(0)
        self.model.compile(optimizer=optimizer(), loss=loss, metrics=list(metrics))
        self.model.optimizer.build(self.model.trainable_variables)
        self._optimizer_start = [np.array(v.numpy()) for v in self.model.optimizer.variables]

    def reset(self, seed: int) -> None:
        """Seed everything with `seed` and give the model the state of a newly built, newly compiled one."""
        seed_everything(check_seed(seed))
        fresh = self.build(seed)
        targets, sources = self.model.variables, fresh.variables
        if [tuple(v.shape) for v in targets] != [tuple(v.shape) for v in sources]:
            raise ValueError("build(seed) must return the same architecture for every seed")
        for target, source in zip(targets, sources):
            target.assign(source.numpy())
        for variable, value in zip(self.model.optimizer.variables, self._optimizer_start):
            variable.assign(value)

    def fit(self, train: Split, val: Split | None = None, *, seed: int, epochs: int, batch_size: int = 32) -> History:
        """Reset to `seed`, train silently, and return the per-epoch history (loss, accuracy, val_...).

        Each epoch is one pass over `train` in a fresh order drawn from `seed`, in minibatches of `batch_size` (the
        last one smaller), as in `model.fit(x, y, shuffle=True)`; the data go in as one repeating tf.data pipeline,
        which spares Keras from rebuilding its input pipeline every epoch.
        """
        import tensorflow as tf

        epochs, batch_size = check_count(epochs, "epochs"), check_count(batch_size, "batch_size")
        x, y = (np.asarray(a) for a in train)
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"train must hold as many labels as inputs, at least one; got {len(x)} and {len(y)}")
        self.reset(seed)
        batches = (tf.data.Dataset.from_tensor_slices((x, y))
                   .shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size).repeat())
        val_batches = None if val is None else tf.data.Dataset.from_tensor_slices(tuple(val)).batch(1024)
        history = self.model.fit(batches, validation_data=val_batches, epochs=epochs,
                                 steps_per_epoch=-(-len(x) // batch_size), verbose=0, shuffle=False)
        return {name: [float(v) for v in values] for name, values in history.history.items()}

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's outputs for `x` with dropout off, from one eager call (no graph to trace for each new shape)."""
        keras = _keras()
        return np.asarray(keras.ops.convert_to_numpy(self.model(np.asarray(x, dtype=np.float32), training=False)))

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Accuracy on (x, y) with dropout off: the largest softmax output, or a sigmoid output above 0.5."""
        out = self.predict(x)
        predicted = (out[:, 0] > 0.5).astype(np.int64) if out.shape[1] == 1 else out.argmax(axis=1)
        return float(np.mean(predicted == np.asarray(y)))


def standardise(train_x: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale every column to zero mean and unit variance with `train_x`'s statistics; apply them to `others` too."""
    train_x = np.asarray(train_x, dtype=np.float64)
    if train_x.ndim != 2 or len(train_x) < 2:
        raise ValueError(f"train_x must be a 2-D array with at least two rows, got shape {train_x.shape}")
    mean, std = train_x.mean(axis=0), train_x.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant column stays constant instead of dividing by zero
    return [((np.asarray(x, dtype=np.float64) - mean) / std).astype(np.float32) for x in (train_x, *others)]


def cross_validate(fit_and_score: Callable[[Split, Split, int], float], x: np.ndarray, y: np.ndarray, *,
                   n_splits: int = 5, seed: int = 0, leak: bool = False) -> np.ndarray:
    """Stratified k-fold cross-validation; return each fold's score from `fit_and_score(train, val, fold)`.

    The inputs are standardised with the statistics of each fold's training part only. `leak=True` makes the
    common mistake instead, standardising once with the statistics of all of `x`, validation folds included.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"x must be 2-D and y 1-D with as many rows, got shapes {x.shape} and {y.shape}")
    n_splits = check_count(n_splits, "n_splits", minimum=2)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=check_seed(seed))
    x_all = standardise(x)[0] if leak else None
    scores = []
    for fold, (train_idx, val_idx) in enumerate(folds.split(x, y)):
        if leak:
            x_train, x_val = x_all[train_idx], x_all[val_idx]
        else:
            x_train, x_val = standardise(x[train_idx], x[val_idx])
        scores.append(float(fit_and_score((x_train, y[train_idx]), (x_val, y[val_idx]), fold)))
    return np.array(scores)


def raw_breast_cancer(test_fraction: float = 0.1, seed: int = 0) -> tuple[Split, Split]:
    """The unscaled Breast Cancer Wisconsin features as (development, test) splits, the test split being the one
    `utils.data.load_dataset("breast_cancer", seed=seed)` holds out (that loader returns features already scaled)."""
    from sklearn.datasets import load_breast_cancer

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    x, y = load_breast_cancer(return_X_y=True)
    n_test = int(round(test_fraction * len(y)))
    x_dev, x_test, y_dev, y_test = train_test_split(x, y, test_size=n_test, stratify=y, random_state=check_seed(seed))
    return (x_dev, y_dev.astype(np.int64)), (x_test, y_test.astype(np.int64))


def paired_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of a - b over paired runs (same seed or same fold)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"a and b must be 1-D with the same length of at least 2, got shapes {a.shape} and {b.shape}")
    diff = a - b
    return float(diff.mean()), float(diff.std(ddof=1))
