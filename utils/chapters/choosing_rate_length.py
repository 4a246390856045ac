"""The run behind the training-length sweep of the chapter on choosing the rate.

`utils.sweeps` names `length_run` with its grid and seeds; `python -m tools.experiments rate_length` stores its rows
in `data/results/`; the chapter reads them. The underfitting network of the early/late dropout sweep is trained for
the largest budget and read at every budget on the way: with a constant learning rate and the minibatch order fixed
by the seed, the reading after `k` times the base epochs is the end of a run of that length. Rates are drop rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from utils.chapters.choosing_rate_sweeps import train_scheduled
from utils.checks import check_count, check_rate
from utils.data import load_dataset
from utils.seeding import seed_everything
from utils.training import evaluate


def length_run(s: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """One run of the training-length sweep: arm "none" or "standard" (drop rate `rate` on every hidden layer).

    Returns the training loss (dropout off) and the test error after `b` times `epochs` epochs, for each `b` in
    `budgets`, as `train_loss_<b>x` and `test_error_<b>x`.
    Chapter: choosing_rate
    """
    if s["arm"] not in ("none", "standard"):
        raise ValueError(f"arm must be 'none' or 'standard', got {s['arm']!r}")
    base = check_count(s["epochs"], "epochs")
    budgets = sorted({check_count(b, "budget") for b in s["budgets"]})
    rate = check_rate(s["rate"]) if s["arm"] == "standard" else 0.0
    data = load_dataset(s["dataset"])
    train, test = (data.x_train, data.y_train), (data.x_test, data.y_test)
    seed_everything(seed)
    widths = [int(s["width"])] * int(s["layers"])
    layers: list[nn.Module] = []
    for width_in, width_out in zip([train[0].shape[1], *widths], widths, strict=False):
        layers += [nn.Linear(width_in, width_out), nn.ReLU(), nn.Dropout(0.0)]
    model = nn.Sequential(*layers, nn.Linear(widths[-1], 10))
    marks = {b * base: b for b in budgets}
    metrics: dict[str, Any] = {}

    def record(epoch: int) -> None:
        if epoch in marks:
            b = marks[epoch]
            metrics[f"train_loss_{b}x"] = evaluate(model, *train)[0]
            metrics[f"test_error_{b}x"] = 1.0 - evaluate(model, *test)[1]

    train_scheduled(model, train, rates=[rate] * (budgets[-1] * base), batch_size=int(s["batch_size"]),
                    lr=float(s["lr"]), momentum=float(s["momentum"]), seed=seed, record=record)
    return metrics
