"""Tests for the chapter on choosing the rate: the early/late sweep where dropout helps, and early stopping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from utils.chapters import choosing_rate_late, choosing_rate_sweeps
from utils.chapters.choosing_rate_late import checkpoints, late_run
from utils.chapters.choosing_rate_stop import stop_on_validation, summed_variance_ratio
from utils.chapters.choosing_rate_tables import curves
from utils.sweeps import SWEEPS

TINY = {"dataset": "mnist5k", "train_size": 200, "layers": 2, "width": 16, "epochs": 4, "every": 2, "lr": 0.05,
        "momentum": 0.9, "batch_size": 50, "rate": 0.5, "switch": 0.25}


def test_the_sweep_reuses_the_schedules_and_the_loop_of_the_first_early_late_sweep():
    assert choosing_rate_late.schedule_rates is choosing_rate_sweeps.schedule_rates
    assert choosing_rate_late.train_scheduled is choosing_rate_sweeps.train_scheduled
    sweep = SWEEPS["rate_late"]
    assert sweep.function() is late_run
    assert [g["schedule"] for g in sweep.grid] == list(choosing_rate_sweeps.SCHEDULES)
    decay = SWEEPS["rate_decay"].parameters
    assert all(sweep.parameters[k] == decay[k] for k in
               ("dataset", "train_size", "layers", "width", "epochs", "lr", "momentum", "batch_size"))
    assert sweep.parameters["switch"] == SWEEPS["rate_schedule"].parameters["switch"]


def test_checkpoints_run_every_few_epochs_to_the_end():
    assert checkpoints(40, 4) == [4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
    with pytest.raises(ValueError, match="divide"):
        checkpoints(10, 4)


def test_a_tiny_run_records_every_metric_at_every_checkpoint_and_repeats_with_its_seed():
    out = late_run({**TINY, "schedule": "late"}, seed=3)
    assert sorted(out) == sorted(f"{m}_{e}" for m in ("train_loss", "val_error", "test_error") for e in (2, 4))
    assert all(0.0 <= out[f"{s}_error_{e}"] <= 1.0 for s in ("val", "test") for e in (2, 4))
    assert out == late_run({**TINY, "schedule": "late"}, seed=3)
    with pytest.raises(ValueError, match="schedule"):
        late_run({**TINY, "schedule": "sometimes"}, seed=0)


def _table() -> pd.DataFrame:
    rows = []
    for seed, (val, test) in enumerate((([0.3, 0.2, 0.25], [0.31, 0.22, 0.21]),
                                        ([0.3, 0.2, 0.2], [0.30, 0.25, 0.20]))):
        row = {"seed": seed, "schedule": "none"}
        row |= {f"val_error_{e}": v for e, v in zip((4, 8, 12), val, strict=True)}
        row |= {f"test_error_{e}": t for e, t in zip((4, 8, 12), test, strict=True)}
        rows.append(row)
    return pd.DataFrame(rows)


def test_stop_on_validation_keeps_the_lowest_validation_reading_and_reports_test_there():
    out = stop_on_validation(_table(), schedule="none")
    assert list(out["stop_epoch"]) == [8, 8]  # a tie goes to the earlier checkpoint
    assert np.allclose(out["stopped"], [0.22, 0.25])
    assert list(out["best_epoch"]) == [12, 12] and np.allclose(out["final"], [0.21, 0.20])
    assert list(curves(_table(), "val_error", schedule="none").columns) == [4, 8, 12]
    with pytest.raises(ValueError, match="no stored run"):
        curves(_table(), "val_error", schedule="late")


def test_correlated_inputs_summed_coherently_dilute_the_shift_and_independent_ones_do_not():
    rng = np.random.default_rng(0)
    h = np.maximum(rng.normal(size=(2_000, 1)) + 0.5 * rng.normal(size=(2_000, 32)), 0)
    w = np.abs(rng.normal(size=(32, 4)))
    assert summed_variance_ratio(h, w, 0.5, seed=1) < 1.5
    assert summed_variance_ratio(h, w, 0.5, seed=1, shuffle=True) >= 2.0
    with pytest.raises(ValueError, match="examples x inputs"):
        summed_variance_ratio(h, w[:3], 0.5)


def test_span_writes_true_minus_signs():
    from utils.chapters.choosing_rate_stop import span
    from utils.stats import paired_difference

    text = span(paired_difference(np.array([0.10, 0.11, 0.12]), np.array([0.12, 0.12, 0.13])))
    assert "-" not in text and "\u2212" in text and text.endswith("points")
