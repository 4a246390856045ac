"""Plumbing for the chapter that reruns the popular Keras dropout tutorials fairly: fresh runs without re-tracing,
and k-fold cross-validation with the standardisation fitted inside each fold. Its seeded Keras models come from
`utils.keras_models`.

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

from utils.checks import check_count, check_seed
from utils.seeding import seed_everything

Split = tuple[np.ndarray, np.ndarray]
History = dict[str, list[float]]


def _keras():
    """Import Keras on first use, so that importing this module stays cheap."""
    import keras

    return keras


class KerasRunner:
    """One compiled Keras model that starts every `fit` from the state of `build(seed)`: fresh runs, traced once.

    `build` maps a seed to an uncompiled model, e.g. ``lambda seed: make_keras_mlp(784, [64], 10, seed=seed)``.
    Chapter: tutorials_offline
    """

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
        for target, source in zip(targets, sources, strict=True):
            target.assign(source.numpy())
        for variable, value in zip(self.model.optimizer.variables, self._optimizer_start, strict=True):
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
    """Scale every column to zero mean and unit variance with `train_x`'s statistics; apply them to `others` too.

    Chapter: tutorials_offline
    """
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
    Chapter: tutorials_offline
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
    """The unscaled Breast Cancer Wisconsin features as (development, test) splits.

    The test split is the one `utils.data.load_dataset("breast_cancer", seed=seed)` holds out (that loader returns
    features already scaled).
    Chapter: tutorials_offline
    """
    from sklearn.datasets import load_breast_cancer

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    x, y = load_breast_cancer(return_X_y=True)
    n_test = int(round(test_fraction * len(y)))
    x_dev, x_test, y_dev, y_test = train_test_split(x, y, test_size=n_test, stratify=y, random_state=check_seed(seed))
    return (x_dev, y_dev.astype(np.int64)), (x_test, y_test.astype(np.int64))


def paired_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of a - b over paired runs (same seed or same fold).

    Chapter: tutorials_offline
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"a and b must be 1-D with the same length of at least 2, got shapes {a.shape} and {b.shape}")
    diff = a - b
    return float(diff.mean()), float(diff.std(ddof=1))
