"""The run behind the early/late dropout sweep on a network where dropout helps (chapter on choosing the rate).

`utils.sweeps` names `late_run` with its grid and seeds; `python -m tools.experiments rate_late` stores its rows in
`data/results/`; the chapter reads them. The network and data are those of the weight-decay sweep (`rate_decay`,
no decay), where dropout at p = 0.5 resolvably lowers the error; the four schedules are `schedule_rates`' and the
training loop is `train_scheduled`'s, both from the early/late sweep's module. Rates are drop rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from utils.chapters.choosing_rate_sweeps import schedule_rates, train_scheduled
from utils.checks import check_count
from utils.data import load_dataset
from utils.seeding import seed_everything
from utils.training import evaluate


def checkpoints(epochs: int, every: int) -> list[int]:
    """The epochs at which a run is read: every `every` epochs, the last at the end of training.

    Chapter: choosing_rate
    """
    epochs, every = check_count(epochs, "epochs"), check_count(every, "every")
    if epochs % every:
        raise ValueError(f"every = {every} must divide epochs = {epochs}")
    return list(range(every, epochs + 1, every))


def late_run(s: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """One run: a schedule of the drop rate on the weight-decay sweep's MLP and 1,000-digit training set.

    Returns the training loss (dropout off) and the validation and test errors at every checkpoint epoch `e`, as
    `train_loss_<e>`, `val_error_<e>` and `test_error_<e>`.
    Chapter: choosing_rate
    """
    epochs = check_count(s["epochs"], "epochs")
    marks = set(checkpoints(epochs, int(s["every"])))
    data = load_dataset(s["dataset"])
    n = check_count(s["train_size"], "train_size")
    train = (data.x_train[:n], data.y_train[:n])
    splits = {"val": (data.x_val, data.y_val), "test": (data.x_test, data.y_test)}
    rates = schedule_rates(s["schedule"], float(s["rate"]), epochs, int(round(epochs * float(s["switch"]))))
    seed_everything(seed)
    widths = [int(s["width"])] * int(s["layers"])
    layers: list[nn.Module] = []
    for width_in, width_out in zip([train[0].shape[1], *widths], widths, strict=False):
        layers += [nn.Linear(width_in, width_out), nn.ReLU(), nn.Dropout(0.0)]
    model = nn.Sequential(*layers, nn.Linear(widths[-1], 10))
    metrics: dict[str, Any] = {}

    def record(epoch: int) -> None:
        if epoch in marks:
            metrics[f"train_loss_{epoch}"] = evaluate(model, *train)[0]
            for name, split in splits.items():
                metrics[f"{name}_error_{epoch}"] = 1.0 - evaluate(model, *split)[1]

    train_scheduled(model, train, rates=rates, batch_size=int(s["batch_size"]), lr=float(s["lr"]),
                    momentum=float(s["momentum"]), seed=seed, record=record)
    return metrics
