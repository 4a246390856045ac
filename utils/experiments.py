"""Experiment helpers that several chapters share: fresh, repeatable training runs and their scores over seeds.

- `train_fresh_mlp` seeds everything and trains a new PyTorch MLP, so that the same arguments give the same run;
- `accuracies` scores a trained model on named splits;
- `seed_errors` repeats a run over seeds and returns each split's error rate per seed.

Helpers that serve one chapter live in `utils/chapters/` (the overfitting chapter's gap and best-epoch readers in
`utils.chapters.overfitting`); the plot of means with bands over seeds is `utils.plotting.plot_bands`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any

import numpy as np
from torch import nn

from utils.progress import progress
from utils.seeding import seed_everything
from utils.torch_models import make_mlp
from utils.training import History, evaluate, train_classifier

Split = tuple[np.ndarray, np.ndarray]


def train_fresh_mlp(
    train: Split,
    val: Split | None,
    *,
    hidden: Sequence[int],
    n_classes: int,
    epochs: int,
    seed: int = 0,
    drop_rate: float = 0.0,
    input_drop_rate: float = 0.0,
    **train_kwargs: Any,
) -> tuple[nn.Sequential, History]:
    """Seed everything with `seed`, build a new MLP sized for `train` and train it; return (model, history).

    The same arguments give the same weights and history, so a run can be repeated, or cut short, exactly.
    `train_kwargs` go to `utils.training.train_classifier` (lr, momentum, weight_decay, max_norm, ...).
    Chapters: overfitting, paper_mnist
    """
    x, y = np.asarray(train[0]), np.asarray(train[1])
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"training inputs must be a non-empty 2-D array (examples x features), got {x.shape}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"training labels must be a 1-D integer array, got shape {y.shape}, dtype {y.dtype}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, Integral) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer of at least 2, got {n_classes!r}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    seed_everything(seed)
    model = make_mlp(x.shape[1], hidden, int(n_classes), drop_rate=drop_rate, input_drop_rate=input_drop_rate)
    history = train_classifier(model, (x, y), val, epochs=epochs, seed=seed, **train_kwargs)
    return model, history


def accuracies(model: nn.Module, splits: Mapping[str, Split]) -> dict[str, float]:
    """Accuracy of `model` (in eval mode) on each named (inputs, labels) split.

    Chapter: overfitting
    """
    if not splits:
        raise ValueError("splits is empty: give at least one name -> (inputs, labels) entry")
    return {name: evaluate(model, x, y)[1] for name, (x, y) in splits.items()}


def seed_errors(
    train: Split,
    splits: Mapping[str, Split],
    *,
    seeds: Sequence[int],
    hidden: Sequence[int],
    n_classes: int,
    epochs: int,
    label: str = "seeds",
    **train_kwargs: Any,
) -> dict[str, np.ndarray]:
    """Train one fresh MLP per seed and return each named split's error rate (1 − accuracy), one value per seed.

    Metrics are measured once, after the last epoch. `train_kwargs` go to `train_fresh_mlp` (drop_rate, lr, ...).
    Chapters: paper_mnist, paper_rate, paper_data_size
    """
    if not splits:
        raise ValueError("splits is empty: give at least one name -> (inputs, labels) entry to measure errors on")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    errors: dict[str, list[float]] = {name: [] for name in splits}
    for seed in progress(seeds, desc=label, unit="seed", leave=False):
        model, _ = train_fresh_mlp(train, None, hidden=hidden, n_classes=n_classes, epochs=epochs, seed=seed,
                                   eval_every=epochs, **train_kwargs)
        for name, accuracy in accuracies(model, splits).items():
            errors[name].append(1.0 - accuracy)
    return {name: np.asarray(values) for name, values in errors.items()}
