"""The run behind the crossed drop rate x learning rate sweep of the chapter on choosing the rate.

`utils.sweeps` names `lr_run` with its grid and seeds; `python -m tools.experiments rate_lr` stores its rows in
`data/results/`; the chapter reads them. A seed fixes the initial weights and the minibatch order, so the arms of a
comparison are paired. Rates are drop rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from utils.data import load_dataset
from utils.experiments import accuracies, train_fresh_mlp


def lr_run(s: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """One run of the rate x learning-rate sweep: every hidden layer drops `rate`, SGD steps with `lr`.

    Returns the training, validation and test error (1 - accuracy, dropout off) at the end of training.
    Chapter: choosing_rate
    """
    data = load_dataset(s["dataset"])
    splits = {"train": (data.x_train, data.y_train), "val": (data.x_val, data.y_val),
              "test": (data.x_test, data.y_test)}
    model, _ = train_fresh_mlp(splits["train"], None, hidden=[int(s["width"])] * int(s["layers"]), n_classes=10,
                               epochs=int(s["epochs"]), seed=seed, drop_rate=float(s["rate"]), lr=float(s["lr"]),
                               momentum=float(s["momentum"]), batch_size=int(s["batch_size"]),
                               eval_every=int(s["epochs"]))
    return {f"{name}_error": 1.0 - accuracy for name, accuracy in accuracies(model, splits).items()}
