"""The runs behind the tutorials chapter's stored sweeps, and the Keras machinery they use.

`utils.sweeps` names the run functions (`mlp_run`, `cnn_run`, `kfold_run`) with their grids, seeds and shared
settings; `python -m tools.experiments` stores their rows in `data/results/` and the chapter reads them. Each run
seeds everything from its seed, so a stored row can be re-run and compared. Rates are drop rates.

Keras turns a compiled model's training step into a TensorFlow graph the first time `fit` runs, which costs about a
second on a laptop CPU. `KerasRunner` compiles one model per architecture and, before each run, copies in the state
of a newly built model with the run's seed (weights, dropout seed states) and the optimizer's starting state, so
that every run is the same as on a brand-new model with that seed, without tracing again. A worker process keeps one
runner per architecture (`runner`) for all the runs it is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import keras
import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from utils.checks import check_count, check_seed
from utils.data import load_dataset
from utils.keras_models import make_keras_cnn, make_keras_mlp
from utils.seeding import seed_everything

Split = tuple[np.ndarray, np.ndarray]
History = dict[str, list[float]]
OPTIMIZERS: dict[str, Callable[..., keras.optimizers.Optimizer]] = {
    "rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
IMAGE_SHAPE = (28, 28, 1)


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

    def fit(self, train: Split, val: Split | None = None, *, seed: int, epochs: int, batch_size: int = 32,
            callbacks: Sequence[keras.callbacks.Callback] = ()) -> History:
        """Reset to `seed`, train silently, and return the per-epoch history (loss, accuracy, val_...).

        Each epoch is one pass over `train` in a fresh order drawn from `seed`, in minibatches of `batch_size` (the
        last one smaller), as in `model.fit(x, y, shuffle=True)`; the data go in as one repeating tf.data pipeline,
        which spares Keras from rebuilding its input pipeline every epoch. `callbacks` go to `model.fit`.
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
        history = self.model.fit(batches, validation_data=val_batches, epochs=epochs, callbacks=list(callbacks),
                                 steps_per_epoch=-(-len(x) // batch_size), verbose=0, shuffle=False)
        return {name: [float(v) for v in values] for name, values in history.history.items()}

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's outputs for `x` with dropout off, from one eager call (no graph to trace for each new shape)."""
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


# --- the runs --------------------------------------------------------------------------------------------------------

# The settings that shape a runner (its model and optimizer); the others (seed, epochs, data) vary between its runs.
_MODEL_KEYS = ("model", "hidden", "filters", "downsample", "drop_rate", "input_drop_rate", "max_norm", "optimizer",
               "lr", "momentum", "n_in", "n_out")


def runner(settings: Mapping[str, Any]) -> KerasRunner:
    """The KerasRunner for a run's settings (model "mlp" or "cnn", sizes, drop rates, optimizer), one per process.

    A worker process traces each architecture once and reuses its runner for every run it is given.
    Chapter: tutorials_offline
    """
    if settings.get("model") not in ("mlp", "cnn"):
        raise ValueError(f"settings['model'] must be 'mlp' or 'cnn', got {settings.get('model')!r}")
    if settings.get("optimizer") not in OPTIMIZERS:
        raise ValueError(f"settings['optimizer'] must be one of {sorted(OPTIMIZERS)}, "
                         f"got {settings.get('optimizer')!r}")
    return _runner(json.dumps({key: settings[key] for key in _MODEL_KEYS if key in settings}, sort_keys=True))


@cache
def _runner(spec: str) -> KerasRunner:
    """The runner for `spec`, a JSON object of the model settings (a string, so that it can key the cache)."""
    s = json.loads(spec)
    extra = {"momentum": s["momentum"]} if "momentum" in s else {}

    def optimizer() -> keras.optimizers.Optimizer:
        return OPTIMIZERS[s["optimizer"]](s["lr"], **extra)

    if s["model"] == "mlp":
        def build(seed: int) -> keras.Model:
            return make_keras_mlp(s["n_in"], s["hidden"], s["n_out"], drop_rate=s.get("drop_rate", 0.0),
                                  input_drop_rate=s.get("input_drop_rate", 0.0), max_norm=s.get("max_norm"),
                                  seed=seed)
    else:
        def build(seed: int) -> keras.Model:
            return make_keras_cnn(10, drop_rate=s.get("drop_rate", 0.0), filters=s["filters"],
                                  downsample=s["downsample"], seed=seed)
    loss = "binary_crossentropy" if s.get("n_out") == 1 else "sparse_categorical_crossentropy"
    return KerasRunner(build, optimizer=optimizer, loss=loss)


class _BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the highest validation accuracy (the first such epoch on ties)."""

    def __init__(self) -> None:
        super().__init__()
        self.best, self.epoch, self.weights = -np.inf, 0, None

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        accuracy = float(logs["val_accuracy"])
        if accuracy > self.best:
            self.best, self.epoch, self.weights = accuracy, epoch + 1, self.model.get_weights()


@cache
def _image_splits(dataset: str, images: bool) -> dict[str, Split]:
    """The train, validation and test splits of `dataset`, as flat rows or as (28, 28, 1) images."""
    data = load_dataset(dataset)
    shape = (-1, *IMAGE_SHAPE) if images else (-1, data.x_train.shape[1])
    return {"train": (data.x_train.reshape(shape), data.y_train), "val": (data.x_val.reshape(shape), data.y_val),
            "test": (data.x_test.reshape(shape), data.y_test)}


def _classifier_run(settings: Mapping[str, Any], seed: int) -> dict[str, float]:
    """One seeded run on an image data set: per-epoch validation curves, training and test accuracies."""
    splits = _image_splits(settings["dataset"], settings["model"] == "cnn")
    trained = runner(settings)
    best = _BestWeights()
    history = trained.fit(splits["train"], splits["val"], seed=seed, epochs=settings["epochs"],
                          batch_size=settings["batch_size"], callbacks=[best])
    metrics = {f"val_acc_{epoch}": value for epoch, value in enumerate(history["val_accuracy"], start=1)}
    metrics |= {f"val_loss_{epoch}": value for epoch, value in enumerate(history["val_loss"], start=1)}
    metrics |= {"val_acc_last": history["val_accuracy"][-1], "val_acc_best": best.best, "best_epoch": float(best.epoch),
                "train_acc_fit": history["accuracy"][-1], "train_acc_off": trained.accuracy(*splits["train"]),
                "test_acc_last": trained.accuracy(*splits["test"])}
    trained.model.set_weights(best.weights)
    metrics["test_acc_best"] = trained.accuracy(*splits["test"])
    return metrics


def mlp_run(settings: Mapping[str, Any], seed: int) -> dict[str, float]:
    """One seeded Keras MLP run: validation accuracy and loss per epoch, training and test accuracies.

    The metrics: `val_acc_<e>` and `val_loss_<e>` after each epoch e; `val_acc_last`; `val_acc_best` and
    `best_epoch` (the first epoch with the highest validation accuracy); `train_acc_fit` (the last epoch's training
    accuracy as `fit` reports it, dropout on) and `train_acc_off` (measured afterwards, dropout off);
    `test_acc_last` and `test_acc_best` (with the last epoch's and the best epoch's weights).
    Chapter: tutorials_offline
    """
    return _classifier_run({**settings, "model": "mlp", "n_in": 784, "n_out": 10}, check_seed(seed))


def cnn_run(settings: Mapping[str, Any], seed: int) -> dict[str, float]:
    """One seeded Keras CNN run on (28, 28, 1) digit images: the metrics of `mlp_run`.

    Chapter: tutorials_offline
    """
    return _classifier_run({**settings, "model": "cnn"}, check_seed(seed))


def kfold_run(settings: Mapping[str, Any], seed: int) -> dict[str, float]:
    """One repetition of k-fold cross-validation on the Breast Cancer development set, its folds cut with `seed`.

    `settings["config"]` names the network among `settings["configs"]`; `settings["scaling"]` is "inside folds"
    (standardised with each fold's training part) or "all data" (once, on all the cases: the leak). Fold k trains
    with seed `seed * n_splits + k` in every configuration. Returns `fold_acc_<k>` (k from 1) and their mean `cv_acc`.
    Chapter: tutorials_offline
    """
    seed = check_seed(seed)
    if settings["scaling"] not in ("inside folds", "all data"):
        raise ValueError(f"scaling must be 'inside folds' or 'all data', got {settings['scaling']!r}")
    n_splits = check_count(settings["n_splits"], "n_splits", minimum=2)
    model = {"model": "mlp", "n_in": 30, "n_out": 1, "hidden": settings["hidden"], "optimizer": "sgd",
             "lr": settings["lr"], "momentum": settings["momentum"], **settings["configs"][settings["config"]]}
    trained = runner(model)
    (x_dev, y_dev), _ = raw_breast_cancer(seed=settings["split_seed"])

    def score(train: Split, held_out: Split, fold: int) -> float:
        trained.fit(train, seed=seed * n_splits + fold, epochs=settings["epochs"], batch_size=settings["batch_size"])
        return trained.accuracy(*held_out)

    scores = cross_validate(score, x_dev, y_dev, n_splits=n_splits, seed=seed,
                            leak=settings["scaling"] == "all data")
    return {**{f"fold_acc_{k}": float(value) for k, value in enumerate(scores, start=1)},
            "cv_acc": float(scores.mean())}
