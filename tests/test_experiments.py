"""Shared experiment helpers: fresh, repeatable training runs, accuracies, errors over seeds, mean ± std; bad input."""

import numpy as np
import pytest
from torch import nn

from utils.experiments import accuracies, seed_errors, train_fresh_mlp


def test_accuracies_need_at_least_one_split():
    with pytest.raises(ValueError):
        accuracies(nn.Linear(4, 3), {})


def test_fresh_runs_repeat_and_a_shorter_run_is_a_prefix(blobs):
    x, y = blobs(120, n_features=4)
    val = blobs(40, n_features=4, seed=1)
    arguments = {"hidden": [16], "n_classes": 3, "seed": 3, "drop_rate": 0.2}
    model, long = train_fresh_mlp((x, y), val, epochs=4, **arguments)
    _, again = train_fresh_mlp((x, y), val, epochs=4, **arguments)
    _, short = train_fresh_mlp((x, y), val, epochs=2, **arguments)
    assert long == again
    assert all(short[key] == long[key][:2] for key in long)
    assert [layer.p for layer in model if isinstance(layer, nn.Dropout)] == [0.2]
    assert model[0].in_features == 4 and model[-1].out_features == 3
    scores = accuracies(model, {"train": (x, y), "val": val})
    assert set(scores) == {"train", "val"} and scores["train"] > 0.9
    assert scores["train"] == long["accuracy"][-1]


def test_training_options_are_passed_on(blobs):
    x, y = blobs(120, n_features=4)
    _, plain = train_fresh_mlp((x, y), None, hidden=[8], n_classes=3, epochs=2)
    _, decayed = train_fresh_mlp((x, y), None, hidden=[8], n_classes=3, epochs=2, weight_decay=0.5)
    assert set(plain) == {"loss", "accuracy"}
    assert plain["loss"] != decayed["loss"]


@pytest.mark.parametrize("train, n_classes", [
    ((np.zeros(5, dtype=np.float32), np.zeros(5, dtype=np.int64)), 3),  # 1-D inputs
    ((np.zeros((0, 4), dtype=np.float32), np.zeros(0, dtype=np.int64)), 3),  # no examples
    ((np.zeros((5, 4), dtype=np.float32), np.zeros(5)), 3),  # float labels
    ((np.zeros((5, 4), dtype=np.float32), np.full(5, 3)), 3),  # label out of range
    ((np.zeros((5, 4), dtype=np.float32), np.zeros(5, dtype=np.int64)), 1),  # one class
    ((np.zeros((5, 4), dtype=np.float32), np.zeros(5, dtype=np.int64)), 2.0),  # not an int
])
def test_fresh_mlp_rejects_bad_data(train, n_classes):
    with pytest.raises(ValueError):
        train_fresh_mlp(train, None, hidden=[4], n_classes=n_classes, epochs=1)


def test_seed_errors_train_one_model_per_seed_and_repeat(blobs):
    x, y = blobs(150, n_features=4)
    val = blobs(60, n_features=4, seed=1)
    arguments = {"seeds": [0, 1], "hidden": [8], "n_classes": 3, "epochs": 3, "drop_rate": 0.2}
    errors = seed_errors((x, y), {"train": (x, y), "val": val}, **arguments)
    assert set(errors) == {"train", "val"} and errors["val"].shape == (2,)
    assert np.all((errors["val"] >= 0) & (errors["val"] <= 1))
    again = seed_errors((x, y), {"train": (x, y), "val": val}, **arguments)
    assert all(np.array_equal(errors[k], again[k]) for k in errors)
    model, _ = train_fresh_mlp((x, y), None, hidden=[8], n_classes=3, epochs=3, seed=1, drop_rate=0.2)
    assert errors["val"][1] == pytest.approx(1 - accuracies(model, {"val": val})["val"])


@pytest.mark.parametrize("splits, seeds", [({}, [0]), ({"val": None}, [])])
def test_seed_errors_reject_empty_input(blobs, splits, seeds):
    x, y = blobs(30, n_features=4)
    with pytest.raises(ValueError):
        seed_errors((x, y), splits, seeds=seeds, hidden=[4], n_classes=3, epochs=1)
