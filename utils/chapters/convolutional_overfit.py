"""The chapter's small CNN where it overfits: a few hundred training digits, trained until it memorises them.

`overfit_run` trains `make_conv_net(kind, rate)` on a stratified subset of the 5,000 MNIST digits for the sweep
`convolutional_overfit` (utils/sweeps.py), so that the four kinds of dropout on feature maps (none, element-wise,
whole channels, 5x5 blocks) can be compared where the plain network has something to regularise.
The rate p is the DROP rate, as everywhere in the book.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from utils.chapters.convolutional_sweeps import make_conv_net
from utils.chapters.paper_sweeps import subset
from utils.checks import check_count
from utils.data import load_dataset
from utils.seeding import seed_everything
from utils.training import evaluate, train_classifier


def overfit_run(settings: Mapping[str, Any], seed: int) -> dict[str, float]:
    """Train `make_conv_net(kind, rate)` on `n_train` digits; return each split's error.

    The seed draws the stratified training subset, the initial weights and the
    minibatch order, so the arms of a pair share all three; the validation and test
    digits are the full splits of the 5,000 digits.
    Chapter: convolutional
    """
    n_train = check_count(settings["n_train"], "n_train")
    data = load_dataset(settings["dataset"])
    x, y = subset(data.x_train, data.y_train, n_train, seed=seed)
    seed_everything(seed)
    model = make_conv_net(settings["kind"], settings["rate"],
                          block_size=settings["block_size"], width=settings["width"])
    train_classifier(model, (x, y), epochs=settings["epochs"],
                     batch_size=settings["batch_size"], lr=settings["lr"],
                     momentum=settings["momentum"], seed=seed,
                     eval_every=settings["epochs"])
    errors = {}
    for split, (xs, ys) in {"train": (x, y), "val": (data.x_val, data.y_val),
                            "test": (data.x_test, data.y_test)}.items():
        _, accuracy = evaluate(model, xs, ys)
        errors[f"{split}_error"] = 1.0 - accuracy
    return errors
