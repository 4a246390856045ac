"""The fifth arm in the recurrent chapter's overfitting regime: per-step input masks, one recurrent mask per sequence.

The sweep `recurrent_overfit` trains a 64-unit LSTM on a stratified subset of 1,000 digits for 50 epochs with four
schemes (none, naive, zaremba, variational). `overfit_arm_run` trains the arm "recurrent_sequence" of
`utils.chapters.recurrent_arms` (Zaremba et al.'s per-step masks on the inputs and the last state, plus one
recurrent mask per sequence) with the same settings, subset and seeds, and measures it the same way, so that it
pairs seed by seed with that sweep's arms (same initial weights, same minibatch order). The experiment store calls
it (the sweep `recurrent_overfit_arm` in `utils.sweeps`).

Rates are drop rates p; kept units are divided by q = 1 - p in training (inverted dropout), nothing at test time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from utils.chapters.paper_sweeps import subset
from utils.chapters.recurrent_arms import check_arm_scheme, train_arm
from utils.chapters.recurrent_overfit import mc_error
from utils.checks import check_count, check_seed
from utils.data import load_dataset
from utils.training import evaluate


def overfit_arm_run(settings: Mapping[str, Any], seed: int) -> dict[str, float]:
    """The experiment store's run: train one arm's LSTM on `n_train` digits read row by row; return error rates.

    `settings` holds scheme, drop_rate, dataset, n_train, subset_seed, hidden, epochs, batch_size, lr (as in the
    sweep `recurrent_overfit`). Errors are measured in one pass without masks, and the test error a second time
    averaged over masked passes (`test_error_mc`), exactly as `recurrent_overfit.overfit_run` measures them.
    Chapter: recurrent
    """
    data = load_dataset(settings["dataset"])
    steps = data.image_shape[0] if data.image_shape else data.x_train.shape[1]
    scheme = check_arm_scheme(settings["scheme"])
    train = subset(data.x_train, data.y_train, check_count(settings["n_train"], "n_train"),
                   seed=check_seed(settings["subset_seed"]))
    model = train_arm(train, steps=steps, scheme=scheme,
                      drop_rate=settings["drop_rate"] if scheme != "none" else 0.0, seed=seed,
                      hidden=settings["hidden"], epochs=settings["epochs"], batch_size=settings["batch_size"],
                      lr=settings["lr"])
    errors = {f"{split}_error": 1.0 - evaluate(model, x, y)[1] for split, (x, y) in
              {"train": train, "val": (data.x_val, data.y_val), "test": (data.x_test, data.y_test)}.items()}
    return {**errors, "test_error_mc": mc_error(model, data.x_test, data.y_test, seed=seed)}
