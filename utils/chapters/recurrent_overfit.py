"""The recurrent chapter's second stored sweep: the same LSTM and schemes where the plain network overfits.

The sweep `recurrent_schemes` trains a 64-unit `MaskedLSTM` on 4,000 digits for 8 epochs, where even the plain
network ends with a few per cent of training error. `overfit_run` trains the same network on a stratified subset of
1,000 of those digits for many more epochs, long enough that without dropout it fits nearly all of them while its
test error stays far higher: a regime with something for dropout to remove. The experiment store calls it (the
sweep `recurrent_overfit` in `utils.sweeps`).

Rates are drop rates p; kept units are divided by q = 1 - p in training (inverted dropout), nothing at test time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from utils.chapters.paper_sweeps import subset
from utils.chapters.recurrent_sweeps import check_scheme, train_sequence_classifier
from utils.checks import check_count, check_seed
from utils.data import load_dataset
from utils.training import evaluate

MC_PASSES = 30  # masked passes averaged for the Monte Carlo test error


@torch.no_grad()
def mc_error(model: nn.Module, x: np.ndarray, y: np.ndarray, *, passes: int = MC_PASSES, seed: int = 0) -> float:
    """Error rate of the class probabilities averaged over `passes` forward passes with the training masks on.

    The masks come from `seed` (PyTorch's global random state is left as it was); the model ends in eval mode.
    Chapter: recurrent
    """
    passes = check_count(passes, "passes")
    inputs = torch.as_tensor(np.asarray(x, dtype=np.float32))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_seed(seed))
        model.train()
        probs = torch.stack([torch.softmax(model(inputs), dim=-1) for _ in range(passes)]).mean(dim=0)
    model.eval()
    return float((probs.argmax(dim=1).numpy() != np.asarray(y)).mean())


def overfit_run(settings: Mapping[str, Any], seed: int) -> dict[str, float]:
    """The experiment store's run: train one scheme's LSTM on `n_train` digits read row by row; return error rates.

    `settings` holds scheme, drop_rate, dataset, n_train, subset_seed, hidden, epochs, batch_size, lr. Every run
    trains on the same stratified subset (drawn with `subset_seed`); the same `seed` gives the same initial weights
    and minibatch order for every scheme, so runs pair up seed by seed. Errors are measured in one pass without
    masks (training error on the subset the network trained on), and the test error a second time averaged over
    masked passes (`test_error_mc`).
    Chapter: recurrent
    """
    data = load_dataset(settings["dataset"])
    steps = data.image_shape[0] if data.image_shape else data.x_train.shape[1]
    scheme = check_scheme(settings["scheme"])
    train = subset(data.x_train, data.y_train, check_count(settings["n_train"], "n_train"),
                   seed=check_seed(settings["subset_seed"]))
    model = train_sequence_classifier(train, steps=steps, scheme=scheme,
                                      drop_rate=settings["drop_rate"] if scheme != "none" else 0.0, seed=seed,
                                      hidden=settings["hidden"], epochs=settings["epochs"],
                                      batch_size=settings["batch_size"], lr=settings["lr"])
    errors = {f"{split}_error": 1.0 - evaluate(model, x, y)[1] for split, (x, y) in
              {"train": train, "val": (data.x_val, data.y_val), "test": (data.x_test, data.y_test)}.items()}
    return {**errors, "test_error_mc": mc_error(model, data.x_test, data.y_test, seed=seed)}
