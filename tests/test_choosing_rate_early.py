"""Tests for the chapter on choosing the rate: the early-dropout sweep on two MNIST-1D networks."""

from __future__ import annotations

import pytest

from utils.chapters import choosing_rate_early, choosing_rate_sweeps
from utils.chapters.choosing_rate_early import early_rates, early_run
from utils.sweeps import SWEEPS

TINY = {"dataset": "mnist1d", "epochs": 4, "every": 2, "lr": 0.05, "momentum": 0.9, "batch_size": 200,
        "switch": 0.5, "networks": {"tiny": {"width": 4, "layers": 1}}}


def test_the_sweep_shares_the_first_sweeps_small_network_schedules_and_loop():
    assert choosing_rate_early.train_scheduled is choosing_rate_sweeps.train_scheduled
    sweep = SWEEPS["rate_early"]
    assert sweep.function() is early_run
    small = SWEEPS["rate_schedule"].parameters["regimes"]["underfitting"]
    assert sweep.parameters["networks"]["small"] == {"width": small["width"], "layers": small["layers"]}
    assert all(sweep.parameters[k] == small[k] for k in ("dataset", "epochs", "lr"))
    narrow = sweep.parameters["networks"]["narrow"]
    assert narrow["layers"] == small["layers"] and narrow["width"] < small["width"]
    assert {g["schedule"] for g in sweep.grid} == set(choosing_rate_early.EARLY_SCHEDULES)
    assert len({g["rate"] for g in sweep.grid if g["schedule"] != "none"}) >= 2


def test_early_linear_decays_from_the_rate_to_zero_by_the_switch():
    assert early_rates("early_linear", 0.4, 6, 4) == pytest.approx([0.4, 0.3, 0.2, 0.1, 0.0, 0.0])
    assert early_rates("early", 0.4, 6, 4) == choosing_rate_sweeps.schedule_rates("early", 0.4, 6, 4)
    with pytest.raises(ValueError, match="early_linear"):
        early_rates("linear", 0.4, 6, 4)
    with pytest.raises(ValueError, match="switch"):
        early_rates("early_linear", 0.4, 6, 7)
    with pytest.raises(ValueError, match="switch"):
        early_rates("early_linear", 0.4, 6, 0)
    with pytest.raises(ValueError, match="drop rate"):
        early_rates("early_linear", 1.0, 6, 4)


def test_a_tiny_run_records_both_splits_error_and_loss_and_repeats_with_its_seed():
    setting = {**TINY, "network": "tiny", "schedule": "early_linear", "rate": 0.2}
    out = early_run(setting, seed=3)
    assert sorted(out) == sorted([*(f"{s}_{m}_{e}" for s in ("train", "test") for m in ("error", "loss")
                                    for e in (2, 4)), "val_error"])
    assert all(0.0 <= out[k] <= 1.0 for k in out if "error" in k)
    assert all(out[k] > 0.0 for k in out if "loss" in k)
    assert out == early_run(setting, seed=3)
    with pytest.raises(ValueError, match="network must be one of"):
        early_run({**setting, "network": "wide"}, seed=0)
