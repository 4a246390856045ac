"""The shared PyTorch MLP and training loop: structure, learning, repeatability and bad input."""

import pytest
import torch
from torch import nn

from utils.progress import QUIET_ENV, progress
from utils.seeding import seed_everything
from utils.training import apply_max_norm, evaluate, make_mlp, train_classifier


def test_mlp_layout_places_dropout_where_asked():
    model = make_mlp(5, [8, 8], 3, drop_rate=0.5, input_drop_rate=0.2)
    kinds = [type(layer).__name__ for layer in model]
    assert kinds == ["Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [layer.p for layer in model if isinstance(layer, nn.Dropout)] == [0.2, 0.5, 0.5]
    assert not any(isinstance(layer, nn.Dropout) for layer in make_mlp(5, [8], 3))


@pytest.mark.parametrize("kwargs", [{"hidden": [0]}, {"hidden": [2.5]}, {"drop_rate": 1.0}, {"input_drop_rate": -0.1}])
def test_mlp_rejects_bad_arguments(kwargs):
    arguments = {"n_in": 5, "hidden": [4], "n_out": 3} | kwargs
    with pytest.raises(ValueError):
        make_mlp(**arguments)


def test_training_learns_and_repeats_with_the_same_seed(blobs):
    x, y = blobs()
    runs = []
    for _ in range(2):
        seed_everything(0)
        model = make_mlp(5, [16], 3, drop_rate=0.3)
        runs.append(train_classifier(model, (x, y), (x[:100], y[:100]), epochs=5, seed=1))
        assert not model.training
    assert runs[0] == runs[1]
    assert runs[0]["loss"][-1] < runs[0]["loss"][0]
    assert runs[0]["accuracy"][-1] > 0.9
    assert set(runs[0]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(runs[0]["val_loss"]) == 5


def test_minibatch_order_follows_the_seed(blobs):
    x, y = blobs()
    histories = []
    for seed in (1, 2):
        seed_everything(0)
        histories.append(train_classifier(make_mlp(5, [16], 3), (x, y), epochs=2, seed=seed))
    assert histories[0]["loss"] != histories[1]["loss"]
    assert set(histories[0]) == {"loss", "accuracy"}


def test_evaluate_uses_eval_mode_and_restores_the_mode(blobs):
    x, y = blobs(50)
    model = make_mlp(5, [16], 3, drop_rate=0.9).train()
    first, second = evaluate(model, x, y), evaluate(model, x, y)
    assert first == second  # no dropout noise in eval mode
    assert model.training
    with pytest.raises(ValueError, match="labels"):
        evaluate(model, x, y[:-1])
    with pytest.raises(ValueError, match="zero examples"):
        evaluate(model, x[:0], y[:0])


def test_evaluate_can_measure_the_current_mode(blobs):
    x, y = blobs(50)
    model = make_mlp(5, [16], 3, drop_rate=0.5).train()
    torch.manual_seed(0)
    first = evaluate(model, x, y, eval_mode=False)
    assert first != evaluate(model, x, y, eval_mode=False)  # dropout stays on: new masks, new loss
    assert model.training
    model.eval()
    assert evaluate(model, x, y, eval_mode=False) == evaluate(model, x, y)


def test_max_norm_caps_every_incoming_weight_vector():
    model = make_mlp(5, [16], 3)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(100.0)
    apply_max_norm(model, 2.0)
    for layer in model:
        if isinstance(layer, nn.Linear):
            assert layer.weight.norm(dim=1).max().item() <= 2.0 + 1e-5


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"batch_size": 0}, {"max_norm": 0.0}])
def test_training_rejects_bad_arguments(kwargs, blobs):
    x, y = blobs(20)
    with pytest.raises(ValueError):
        train_classifier(make_mlp(5, [4], 3), (x, y), **({"epochs": 1} | kwargs))


def test_progress_is_silent_when_the_book_tooling_asks(monkeypatch, capsys):
    monkeypatch.setenv(QUIET_ENV, "1")
    assert list(progress(range(3))) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    monkeypatch.setenv(QUIET_ENV, "0")
    list(progress(range(3), desc="shown"))
    assert "shown" in capsys.readouterr().err
