"""The runs behind the chapter on choosing the rate and the place: one function per stored sweep.

`utils.sweeps` names these functions with their grids and seeds; `python -m tools.experiments` stores their rows in
`data/results/`; the chapter reads them. Each run seeds everything from its seed, so the arms of a comparison start
from the same weights and see the same minibatches (paired runs). Rates are drop rates, as everywhere in the book.

- `batch_run`: a drop rate crossed with a minibatch size, the learning rate scaled with the batch;
- `decay_run`: a drop rate crossed with an L2 weight decay;
- `schedule_run`: dropout on throughout, never, only early in training, or only late (Liu et al., 2023);
- `bn_run`: dropout before a batch-normalisation layer against dropout after the last one (Li et al., 2019).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import nn

from utils.checks import check_count, check_rate, check_seed, check_sizes
from utils.data import load_dataset
from utils.experiments import train_fresh_mlp
from utils.seeding import seed_everything
from utils.training import evaluate

Split = tuple[np.ndarray, np.ndarray]
SCHEDULES: tuple[str, ...] = ("none", "standard", "early", "late")
PLACES: tuple[str, ...] = ("none", "before BN", "after last BN")
CHECKPOINTS = 10  # how many times in a scheduled run the training loss and test error are recorded


@cache
def _splits(dataset: str, train_size: int | None = None) -> dict[str, Split]:
    """The train/val/test splits of `dataset`; with `train_size`, the first `train_size` training examples only."""
    data = load_dataset(dataset)
    n = len(data.y_train) if train_size is None else int(train_size)
    return {"train": (data.x_train[:n], data.y_train[:n]), "val": (data.x_val, data.y_val),
            "test": (data.x_test, data.y_test)}


def _errors(model: nn.Module, splits: Mapping[str, Split]) -> dict[str, float]:
    """Each split's error rate (1 - accuracy), measured in eval mode, as `<split>_error`."""
    return {f"{name}_error": 1.0 - evaluate(model, *split)[1] for name, split in splits.items()}


def batch_run(s: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """One run of the rate x minibatch-size sweep: the learning rate is `base_lr * batch_size / base_batch`.

    Every run trains the same number of epochs, so a larger batch takes fewer, larger steps (the linear scaling rule:
    the step size per example stays the same).
    Chapter: choosing_rate
    """
    data = _splits(s["dataset"])
    batch = int(s["batch_size"])
    lr = float(s["base_lr"]) * batch / int(s["base_batch"])
    model, _ = train_fresh_mlp(data["train"], None, hidden=[int(s["width"])] * int(s["layers"]), n_classes=10,
                               epochs=int(s["epochs"]), seed=seed, drop_rate=float(s["rate"]), lr=lr,
                               momentum=float(s["momentum"]), batch_size=batch, eval_every=int(s["epochs"]))
    return {"lr": lr, **_errors(model, data)}


def decay_run(s: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """One run of the rate x weight-decay sweep, on a small training set where both have something to fix.

    Chapter: choosing_rate
    """
    data = _splits(s["dataset"], int(s["train_size"]))
    model, _ = train_fresh_mlp(data["train"], None, hidden=[int(s["width"])] * int(s["layers"]), n_classes=10,
                               epochs=int(s["epochs"]), seed=seed, drop_rate=float(s["rate"]), lr=float(s["lr"]),
                               momentum=float(s["momentum"]), weight_decay=float(s["weight_decay"]),
                               batch_size=int(s["batch_size"]), eval_every=int(s["epochs"]))
    return _errors(model, data)


def schedule_rates(schedule: str, rate: float, epochs: int, switch: int) -> list[float]:
    """The drop rate of each epoch under one of the four schedules.

    `standard` drops at `rate` in every epoch, `none` never, `early` in the first `switch` epochs only, `late` from
    epoch `switch` + 1 on.

    Chapter: choosing_rate
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    rate = check_rate(rate)
    epochs = check_count(epochs, "epochs")
    switch = check_count(switch, "switch", minimum=0)
    if switch > epochs:
        raise ValueError(f"switch must lie between 0 and epochs = {epochs}, got {switch}")
    on = {"standard": [True] * epochs, "none": [False] * epochs,
          "early": [e < switch for e in range(epochs)], "late": [e >= switch for e in range(epochs)]}[schedule]
    return [rate if flag else 0.0 for flag in on]


def train_scheduled(model: nn.Module, train: Split, *, rates: Sequence[float], batch_size: int, lr: float,
                    momentum: float, seed: int, record: Callable[[int], None] | None = None) -> None:
    """Train `model` with SGD, one epoch per entry of `rates`, every Dropout layer set to that epoch's rate.

    `record(epoch)` (1-based), when given, is called after each epoch with the model in eval mode. The minibatch
    order comes from `seed`, so two schedules with the same seed and initial weights see the same minibatches.
    Chapter: choosing_rate
    """
    rates = [check_rate(rate) for rate in rates]
    batch_size = check_count(batch_size, "batch_size")
    x, y = torch.as_tensor(np.asarray(train[0], np.float32)), torch.as_tensor(np.asarray(train[1], np.int64))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    generator = torch.Generator().manual_seed(check_seed(seed))
    dropouts = [layer for layer in model.modules() if isinstance(layer, nn.Dropout)]
    for epoch, rate in enumerate(rates, start=1):
        for layer in dropouts:
            layer.p = rate
        model.train()
        for batch in torch.randperm(len(x), generator=generator).split(batch_size):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
        model.eval()
        if record is not None:
            record(epoch)


def schedule_run(s: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """One run of the early/late dropout sweep: a regime (network and data) and a schedule of the drop rate.

    Records the training loss and the test error at CHECKPOINTS evenly spaced epochs (`train_loss_k`,
    `test_error_k`, k = 1..CHECKPOINTS, the last at the end of training).
    Chapter: choosing_rate
    """
    regime = s["regimes"][s["regime"]]
    data = _splits(regime["dataset"], regime.get("train_size"))
    epochs = int(regime["epochs"])
    rates = schedule_rates(s["schedule"], float(regime["rate"]), epochs, int(round(epochs * float(s["switch"]))))
    seed_everything(seed)
    n_in = data["train"][0].shape[1]
    widths = [int(regime["width"])] * int(regime["layers"])
    layers: list[nn.Module] = []
    for width_in, width_out in zip([n_in, *widths], widths, strict=False):
        layers += [nn.Linear(width_in, width_out), nn.ReLU(), nn.Dropout(0.0)]
    model = nn.Sequential(*layers, nn.Linear(widths[-1], 10))
    marks = {int(round(epochs * k / CHECKPOINTS)): k for k in range(1, CHECKPOINTS + 1)}
    metrics: dict[str, Any] = {}

    def record(epoch: int) -> None:
        if epoch in marks:
            k = marks[epoch]
            metrics[f"train_loss_{k}"] = evaluate(model, *data["train"])[0]
            metrics[f"test_error_{k}"] = 1.0 - evaluate(model, *data["test"])[1]

    train_scheduled(model, data["train"], rates=rates, batch_size=int(s["batch_size"]), lr=float(regime["lr"]),
                    momentum=float(s["momentum"]), seed=seed, record=record)
    return metrics


def make_bn_mlp(n_in: int, hidden: Sequence[int], n_out: int, *, rate: float, place: str) -> nn.Sequential:
    """A ReLU MLP with BatchNorm1d after each hidden Linear, dropout `rate` placed by `place`.

    `place` is "before BN" (dropout after every hidden block, so every block but the first sees dropped inputs
    before its BatchNorm), "after last BN" (dropout only after the last hidden block, where no BatchNorm follows) or
    "none".
    Chapter: choosing_rate
    """
    if place not in PLACES:
        raise ValueError(f"place must be one of {PLACES}, got {place!r}")
    hidden = check_sizes(hidden, "hidden")
    rate = check_rate(rate)
    layers: list[nn.Module] = []
    for i, (width_in, width_out) in enumerate(zip([n_in, *hidden], hidden, strict=False)):
        layers += [nn.Linear(width_in, width_out), nn.BatchNorm1d(width_out), nn.ReLU()]
        last = i == len(hidden) - 1
        if rate and (place == "before BN" or (place == "after last BN" and last)):
            layers.append(nn.Dropout(rate))
    return nn.Sequential(*layers, nn.Linear(hidden[-1], n_out))


@torch.no_grad()
def refit_batch_norm(model: nn.Module, x: np.ndarray, *, batch_size: int = 500) -> None:
    """Re-estimate every BatchNorm layer's running mean and variance on `x` with dropout OFF (its test-time state).

    Chapter: choosing_rate
    """
    inputs = torch.as_tensor(np.asarray(x, np.float32))
    model.eval()
    norms = [layer for layer in model.modules() if isinstance(layer, nn.modules.batchnorm._BatchNorm)]
    for layer in norms:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over all the batches below
        layer.train()
    for part in inputs.split(batch_size):
        model(part)
    model.eval()


@torch.no_grad()
def variance_ratio(model: nn.Sequential, x: np.ndarray, *, samples: int = 20) -> tuple[float, float]:
    """(measured, predicted) mean ratio over units of the variance the second BatchNorm sees in training to test.

    Measured: the variance over `x` and `samples` dropout masks of the second block's Linear output with dropout on,
    divided by the same variance with dropout off (the BatchNorm layers in eval mode throughout). Predicted, for
    independent masks: Var_train = Var_test + p/(1 - p) * sum_i w_i^2 E[h_i^2], with h the dropped layer's input.
    Chapter: choosing_rate
    """
    model.eval()
    dropout_at = next(i for i, layer in enumerate(model) if isinstance(layer, nn.Dropout))
    linear = model[dropout_at + 1]
    rate = model[dropout_at].p
    inputs = torch.as_tensor(np.asarray(x, np.float32))
    h = model[:dropout_at](inputs)
    test_var = linear(h).var(dim=0)
    model[dropout_at].train()
    train_var = torch.cat([linear(model[dropout_at](h)) for _ in range(samples)]).var(dim=0)
    model[dropout_at].eval()
    extra = rate / (1.0 - rate) * (linear.weight ** 2) @ (h ** 2).mean(dim=0)
    return float((train_var / test_var).mean()), float(((test_var + extra) / test_var).mean())


def bn_run(s: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """One run of the variance-shift sweep: test error with BN's running statistics and with them refitted.

    Chapter: choosing_rate
    """
    data = _splits(s["dataset"])
    seed_everything(seed)
    rate, place = float(s["rate"]), s["place"]
    model = make_bn_mlp(data["train"][0].shape[1], [int(s["width"])] * int(s["layers"]), 10, rate=rate, place=place)
    train_scheduled(model, data["train"], rates=[rate] * int(s["epochs"]), batch_size=int(s["batch_size"]),
                    lr=float(s["lr"]), momentum=float(s["momentum"]), seed=seed)
    measured, predicted = variance_ratio(model, data["train"][0]) if place == "before BN" else (1.0, 1.0)
    test_error = 1.0 - evaluate(model, *data["test"])[1]
    refit_batch_norm(model, data["train"][0])
    return {"test_error": test_error, "test_error_refit": 1.0 - evaluate(model, *data["test"])[1],
            "var_ratio": measured, "var_ratio_predicted": predicted}
