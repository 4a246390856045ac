"""The shared PyTorch training loop, evaluation and max-norm: learning, repeatability and bad input."""

import pytest
import torch
from torch import nn

from utils.progress import QUIET_ENV, progress
from utils.seeding import seed_everything
from utils.torch_models import make_mlp
from utils.training import apply_max_norm, evaluate, train_classifier


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
    with pytest.raises(ValueError, match="max_norm"):
        apply_max_norm(model, 0.0)


@pytest.mark.parametrize("kwargs, error", [({"epochs": 0}, ValueError), ({"batch_size": 0}, ValueError),
                                           ({"epochs": 2.0}, TypeError), ({"max_norm": 0.0}, ValueError),
                                           ({"max_norm": float("nan")}, ValueError), ({"seed": -1}, ValueError)])
def test_training_rejects_bad_arguments(kwargs, error, blobs):
    x, y = blobs(20)
    with pytest.raises(error, match=next(iter(kwargs))):
        train_classifier(make_mlp(5, [4], 3), (x, y), **({"epochs": 1} | kwargs))


def test_progress_is_silent_when_the_book_tooling_asks(monkeypatch, capsys):
    monkeypatch.setenv(QUIET_ENV, "1")
    assert list(progress(range(3))) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    monkeypatch.setenv(QUIET_ENV, "0")
    list(progress(range(3), desc="shown"))
    assert "shown" in capsys.readouterr().err


def test_device_cpu_is_the_default_and_gives_identical_runs(blobs):
    x, y = blobs()
    runs = []
    for device in (None, "cpu", torch.device("cpu")):
        seed_everything(0)
        model = make_mlp(5, [16], 3, drop_rate=0.3)
        kwargs = {} if device is None else {"device": device}
        runs.append(train_classifier(model, (x, y), (x[:50], y[:50]), epochs=3, seed=1, **kwargs))
        assert next(model.parameters()).device.type == "cpu"
    assert runs[0] == runs[1] == runs[2]


@pytest.mark.parametrize("device, error", [("gpu", ValueError), ("meta", ValueError), (3, TypeError)])
def test_training_rejects_bad_devices(blobs, device, error):
    x, y = blobs(20)
    with pytest.raises(error, match="device"):
        train_classifier(make_mlp(5, [4], 3), (x, y), epochs=1, device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_missing_gpu_is_a_clear_error(blobs):
    x, y = blobs(20)
    with pytest.raises(ValueError, match="CUDA"):
        train_classifier(make_mlp(5, [4], 3), (x, y), epochs=1, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_the_gpu_matches_the_cpu_closely(blobs):
    x, y = blobs()
    histories = {}
    for device in ("cpu", "cuda"):
        seed_everything(0)
        model = make_mlp(5, [16], 3)  # no dropout: CPU and GPU draw different masks
        histories[device] = train_classifier(model, (x, y), (x[:50], y[:50]), epochs=3, device=device)
        assert next(model.parameters()).device.type == device
        assert evaluate(model, x, y)[1] == histories[device]["accuracy"][-1]  # evaluate follows the model
    for key, values in histories["cpu"].items():
        assert histories["cuda"][key] == pytest.approx(values, abs=1e-4)


def test_eval_every_measures_fewer_epochs_without_changing_training(blobs):
    x, y = blobs()
    histories = []
    for eval_every in (1, 2):
        seed_everything(0)
        model = make_mlp(5, [16], 3, drop_rate=0.3)
        histories.append(train_classifier(model, (x, y), (x[:50], y[:50]), epochs=5, eval_every=eval_every))
    every, some = histories
    assert all(some[key] == [every[key][i] for i in (1, 3, 4)] for key in every)  # epochs 2, 4 and the last


@pytest.mark.parametrize("eval_every, error", [(0, ValueError), (True, TypeError), (1.5, TypeError)])
def test_eval_every_must_be_a_positive_integer(blobs, eval_every, error):
    x, y = blobs(20)
    with pytest.raises(error, match="eval_every"):
        train_classifier(make_mlp(5, [4], 3), (x, y), epochs=1, eval_every=eval_every)


def test_a_learning_rate_schedule_falls_linearly_to_lr_end(blobs, monkeypatch):
    x, y = blobs(100)
    seen = []
    step = torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    train_classifier(make_mlp(5, [4], 3), (x, y), epochs=2, batch_size=40, lr=0.5, lr_end=0.1)
    assert len(seen) == 6  # 3 minibatches per epoch
    assert seen[0] == 0.5 and seen[-1] == pytest.approx(0.1)
    assert seen == pytest.approx([0.5 - 0.4 * i / 5 for i in range(6)])
    seen.clear()
    train_classifier(make_mlp(5, [4], 3), (x, y), epochs=1, batch_size=40, lr=0.5)
    assert seen == [0.5, 0.5, 0.5]  # no lr_end: constant, as before


def test_momentum_rises_linearly_to_momentum_end(blobs, monkeypatch):
    x, y = blobs(100)
    seen = []
    step = torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["momentum"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    train_classifier(make_mlp(5, [4], 3), (x, y), epochs=2, batch_size=40, momentum=0.5, momentum_end=0.95)
    assert seen == pytest.approx([0.5 + 0.45 * i / 5 for i in range(6)])
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="momentum_end"):
            train_classifier(make_mlp(5, [4], 3), (x, y), epochs=1, momentum_end=bad)


def test_a_constant_schedule_is_the_same_as_none(blobs):
    x, y = blobs()
    histories = []
    for lr_end in (None, 0.05):
        seed_everything(0)
        histories.append(train_classifier(make_mlp(5, [16], 3), (x, y), epochs=3, lr=0.05, lr_end=lr_end))
    assert histories[0] == histories[1]


@pytest.mark.parametrize("kwargs", [{"lr": 0.0}, {"lr": -0.1}, {"lr_end": -0.01}])
def test_learning_rates_are_checked(blobs, kwargs):
    x, y = blobs(20)
    with pytest.raises(ValueError, match="lr"):
        train_classifier(make_mlp(5, [4], 3), (x, y), epochs=1, **kwargs)
