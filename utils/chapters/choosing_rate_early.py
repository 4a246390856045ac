"""The run behind the early-dropout sweep on two MNIST-1D networks (chapter on choosing the rate).

`utils.sweeps` names `early_run` with its grid and seeds; `python -m tools.experiments rate_early` stores its rows in
`data/results/`; the chapter reads them. Two networks train on the same MNIST-1D signals: the small network of the
early/late sweep (`rate_schedule`), and a narrower one that cannot fit its training set. Each is trained without
dropout and, at more than one drop rate, with dropout throughout, switched off in one step (`early`), or decayed
linearly to zero by the switch (`early_linear`, the other early schedule in Liu et al.'s code). Every checkpoint
records the training error and loss as well as the test error and loss, so the regime is shown, not assumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from utils.chapters.choosing_rate_late import checkpoints
from utils.chapters.choosing_rate_sweeps import SCHEDULES, schedule_rates, train_scheduled
from utils.checks import check_count, check_rate
from utils.data import load_dataset
from utils.seeding import seed_everything
from utils.torch_models import make_mlp
from utils.training import evaluate

EARLY_SCHEDULES: tuple[str, ...] = ("none", "standard", "early", "early_linear")


def early_rates(schedule: str, rate: float, epochs: int, switch: int) -> list[float]:
    """The drop rate of each epoch: `schedule_rates`' schedules, or `early_linear`, from `rate` down to 0 by `switch`.

    Under `early_linear` epoch e (0-based) of the first `switch` drops at rate * (switch - e) / switch; later ones
    drop nothing.
    Chapter: choosing_rate
    """
    if schedule != "early_linear":
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {(*SCHEDULES, 'early_linear')}, got {schedule!r}")
        return schedule_rates(schedule, rate, epochs, switch)
    rate, epochs = check_rate(rate), check_count(epochs, "epochs")
    switch = check_count(switch, "switch")
    if switch > epochs:
        raise ValueError(f"switch must lie between 1 and epochs = {epochs}, got {switch}")
    return [rate * (switch - e) / switch if e < switch else 0.0 for e in range(epochs)]


def early_run(s: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """One run: a network of `s["networks"]`, a schedule and a drop rate, on MNIST-1D.

    Returns, at every checkpoint epoch `e`, the training and test error and loss (dropout off) as `train_error_<e>`,
    `train_loss_<e>`, `test_error_<e>`, `test_loss_<e>`, and the validation error at the end as `val_error`.
    Chapter: choosing_rate
    """
    if s["network"] not in s["networks"]:
        raise ValueError(f"network must be one of {sorted(s['networks'])}, got {s['network']!r}")
    network = s["networks"][s["network"]]
    epochs = check_count(s["epochs"], "epochs")
    marks = set(checkpoints(epochs, int(s["every"])))
    data = load_dataset(s["dataset"])
    splits = {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)}
    rates = early_rates(s["schedule"], float(s["rate"]), epochs, int(round(epochs * float(s["switch"]))))
    seed_everything(seed)
    hidden = [int(network["width"])] * int(network["layers"])
    model = make_mlp(data.x_train.shape[1], hidden, 10, drop_rate=max(rates))  # train_scheduled sets each rate
    metrics: dict[str, Any] = {}

    def record(epoch: int) -> None:
        if epoch in marks:
            for name, split in splits.items():
                loss, accuracy = evaluate(model, *split)
                metrics[f"{name}_error_{epoch}"] = 1.0 - accuracy
                metrics[f"{name}_loss_{epoch}"] = loss
        if epoch == epochs:
            metrics["val_error"] = 1.0 - evaluate(model, data.x_val, data.y_val)[1]

    train_scheduled(model, splits["train"], rates=rates, batch_size=int(s["batch_size"]), lr=float(s["lr"]),
                    momentum=float(s["momentum"]), seed=seed, record=record)
    return metrics
