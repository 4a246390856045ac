"""Tests for the chapter on choosing the rate: reading sweeps, the schedules, the BN helpers, the runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from utils.chapters.choosing_rate import (
    bare_interval,
    compare,
    comparison_table,
    dropout_variance_ratio,
    flat_band,
    gain_grid,
    interaction,
    mean_choice,
    per_seed_choice,
    select,
)
from utils.chapters.choosing_rate_length import length_run
from utils.chapters.choosing_rate_lr import lr_run
from utils.chapters.choosing_rate_sweeps import (
    make_bn_mlp,
    refit_batch_norm,
    schedule_rates,
    train_scheduled,
    variance_ratio,
)


@pytest.fixture
def table() -> pd.DataFrame:
    """Three rates x five seeds: rate 0.2 is best on validation and test, rate 0.5 clearly worse, 0.0 close."""
    rows = []
    for seed in range(5):
        noise = 0.001 * ((seed * 7) % 5 - 2)
        for rate, val, test in ((0.0, 0.052, 0.061), (0.2, 0.050, 0.060), (0.5, 0.080, 0.090)):
            bump = 0.004 if (rate == 0.0 and seed == 3) else 0.0  # seed 3 prefers rate 0.2 more strongly
            rows.append({"rate": rate, "seed": seed, "val_error": val + noise + bump,
                         "test_error": test + noise * (1 + rate)})
    return pd.DataFrame(rows)


def test_select_returns_one_value_per_seed_in_seed_order(table):
    values = select(table, "test_error", rate=0.2)
    assert list(values.index) == [0, 1, 2, 3, 4]
    assert np.allclose(values, table[table.rate == 0.2].sort_values("seed").test_error)


def test_select_and_compare_refuse_bad_input(table):
    with pytest.raises(TypeError, match="DataFrame"):
        select(table.to_dict(), "test_error", rate=0.2)
    with pytest.raises(ValueError, match="lacks the columns"):
        select(table, "train_error", rate=0.2)
    with pytest.raises(ValueError, match="no stored run"):
        select(table, "test_error", rate=0.7)
    with pytest.raises(ValueError, match="several runs per seed"):
        select(table, "test_error")
    with pytest.raises(ValueError, match="two shared seeds"):
        compare(table[table.seed < 1], "test_error", {"rate": 0.5}, {"rate": 0.2})


def test_compare_is_paired_a_minus_b(table):
    difference = compare(table, "test_error", {"rate": 0.5}, {"rate": 0.2})
    assert difference.n == 5 and difference.resolved and difference.mean == pytest.approx(0.03, abs=1e-3)


def test_flat_band_holds_the_best_and_the_unresolved_rates(table):
    best, band = flat_band(table, "val_error")
    assert best == 0.2
    assert 0.2 in band and 0.5 not in band


def test_per_seed_choice_picks_the_lowest_validation_error_lower_rate_on_ties(table):
    picked = per_seed_choice(table, [0.0, 0.2, 0.5])
    assert list(picked.columns) == ["rate", "test_error"]
    assert (picked.rate == 0.2).all()
    tied = table.assign(val_error=0.05)
    assert (per_seed_choice(tied, [0.2, 0.5]).rate == 0.2).all()
    assert mean_choice(tied, [0.5, 0.2]) == 0.2
    assert mean_choice(table, [0.0, 0.5]) == 0.0


def test_choices_refuse_bad_rates(table):
    with pytest.raises(ValueError, match="lacks some of the rates"):
        per_seed_choice(table, [0.0, 0.3])
    with pytest.raises(ValueError, match="empty"):
        per_seed_choice(table, [])
    with pytest.raises(ValueError, match="empty"):
        mean_choice(table, [])
    with pytest.raises(ValueError, match="rate"):
        mean_choice(table, [1.0])


def test_comparison_table_formats_points_and_verdicts(table):
    shown = comparison_table({"0.5 − 0.2": compare(table, "test_error", {"rate": 0.5}, {"rate": 0.2})})
    assert list(shown.columns) == ["mean", "95 % interval", "verdict"]
    assert shown.loc["0.5 − 0.2", "verdict"] == "resolved"
    assert shown.loc["0.5 − 0.2", "mean"].startswith("+3.0")
    with pytest.raises(ValueError, match="empty"):
        comparison_table({})


def test_schedules_switch_at_the_right_epoch():
    assert schedule_rates("standard", 0.5, 4, 1) == [0.5] * 4
    assert schedule_rates("none", 0.5, 4, 1) == [0.0] * 4
    assert schedule_rates("early", 0.5, 4, 1) == [0.5, 0.0, 0.0, 0.0]
    assert schedule_rates("late", 0.5, 4, 1) == [0.0, 0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="schedule must be one of"):
        schedule_rates("middle", 0.5, 4, 1)
    with pytest.raises(ValueError, match="switch"):
        schedule_rates("early", 0.5, 4, 5)
    with pytest.raises(ValueError, match="rate"):
        schedule_rates("early", 1.0, 4, 1)


def test_train_scheduled_sets_each_epochs_rate_and_repeats_with_a_seed():
    x = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    seen: list[float] = []

    def run() -> nn.Sequential:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.0), nn.Linear(8, 2))
        train_scheduled(model, (x, y), rates=[0.3, 0.0], batch_size=10, lr=0.1, momentum=0.0, seed=1,
                        record=lambda epoch: seen.append(model[2].p))
        return model

    first, second = run(), run()
    assert seen == [0.3, 0.0, 0.3, 0.0] and not first.training
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters(), strict=True))
    with pytest.raises(ValueError, match="rate"):
        train_scheduled(first, (x, y), rates=[1.5], batch_size=10, lr=0.1, momentum=0.0, seed=1)


def test_bn_mlp_places_dropout_where_asked():
    def kinds(place: str) -> list[str]:
        return [type(m).__name__ for m in make_bn_mlp(6, [4, 4], 3, rate=0.5, place=place)]

    before, after = kinds("before BN"), kinds("after last BN")
    assert before.count("Dropout") == 2 and before.index("Dropout") < len(before) - before[::-1].index("BatchNorm1d")
    assert after.count("Dropout") == 1 and after[-2] == "Dropout"
    assert "Dropout" not in kinds("none")
    with pytest.raises(ValueError, match="place must be one of"):
        make_bn_mlp(6, [4], 3, rate=0.5, place="between")


def test_variance_ratio_matches_its_prediction_and_refit_uses_the_data():
    torch.manual_seed(0)
    model = make_bn_mlp(6, [32, 16], 3, rate=0.5, place="before BN")
    x = np.random.default_rng(1).normal(size=(400, 6)).astype(np.float32)
    measured, predicted = variance_ratio(model, x, samples=50)
    assert measured > 1.2 and measured == pytest.approx(predicted, rel=0.05)
    refit_batch_norm(model, x, batch_size=100)
    first = model[1]
    assert not model.training
    with torch.no_grad():
        z = model[0](torch.as_tensor(x))
    assert torch.allclose(first.running_mean, z.mean(dim=0), atol=1e-5)
    assert torch.allclose(first.running_var, z.var(dim=0), rtol=0.03)  # the mean of 4 batch variances


def test_dropout_variance_ratio_is_one_over_keep_for_zero_mean_columns():
    x = np.random.default_rng(0).normal(size=(2000, 3))
    x -= x.mean(axis=0)
    measured, predicted = dropout_variance_ratio(x, 0.5, samples=20)
    assert predicted == pytest.approx(2.0) and measured == pytest.approx(2.0, rel=0.05)
    shifted_measured, shifted = dropout_variance_ratio(x + 3.0, 0.5, samples=20)
    assert shifted > 10 and shifted_measured == pytest.approx(shifted, rel=0.05)
    with pytest.raises(ValueError, match="2-D"):
        dropout_variance_ratio(x[:, 0], 0.5)
    with pytest.raises(ValueError, match="vary"):
        dropout_variance_ratio(np.ones((5, 2)), 0.5)


def test_comparison_table_takes_a_scale_for_losses(table):
    shown = comparison_table({"loss": compare(table, "test_error", {"rate": 0.5}, {"rate": 0.2})}, scale=1.0,
                             unit="", digits=3)
    assert shown.loc["loss", "mean"] == "+0.030"
    assert shown.loc["loss", "95 % interval"].count("+0.0") == 2


@pytest.fixture
def crossed() -> pd.DataFrame:
    """Two rates x two learning rates x four seeds: dropout lowers the error by 2 points at lr 0.1 only."""
    rows = []
    for seed in range(4):
        noise = 0.001 * ((seed * 3) % 4)
        for lr in (0.05, 0.1):
            for rate in (0.0, 0.2):
                gain = -0.02 if (lr == 0.1 and rate == 0.2) else 0.0
                rows.append({"lr": lr, "rate": rate, "seed": seed, "test_error": 0.08 + noise + gain + 0.0005 * seed
                             * (rate > 0)})
    return pd.DataFrame(rows)


def test_interaction_is_a_paired_difference_of_differences(crossed):
    d = interaction(crossed, "test_error", key="lr", a=0.1, b=0.05, rate=0.2)
    assert d.n == 4 and d.resolved and d.mean == pytest.approx(-0.02)
    flipped = interaction(crossed, "test_error", key="lr", a=0.05, b=0.1, rate=0.2)
    assert flipped.mean == pytest.approx(0.02)
    with pytest.raises(ValueError, match="two seeds"):
        interaction(crossed[crossed.seed < 1], "test_error", key="lr", a=0.1, b=0.05, rate=0.2)
    with pytest.raises(ValueError, match="rate"):
        interaction(crossed, "test_error", key="lr", a=0.1, b=0.05, rate=1.2)


def test_gain_grid_has_a_row_per_setting_and_marks_resolved_cells(crossed):
    grid = gain_grid(crossed, "test_error", key="lr")
    assert list(grid.index) == [0.05, 0.1] and list(grid.columns) == ["p = 0.2"]
    assert grid.loc[0.1, "p = 0.2"].startswith("-1.9 [") and grid.loc[0.1, "p = 0.2"].endswith(" *")
    assert not grid.loc[0.05, "p = 0.2"].endswith("*")
    with pytest.raises(ValueError, match="no drop rate other"):
        gain_grid(crossed[crossed.rate == 0.0], "test_error", key="lr")


TINY_LR_RUN = {"dataset": "mnist5k", "layers": 1, "width": 8, "epochs": 1, "momentum": 0.9, "batch_size": 500,
               "rate": 0.2, "lr": 0.05}


def test_lr_run_returns_three_errors_and_repeats_with_a_seed():
    first = lr_run(TINY_LR_RUN, seed=3)
    assert set(first) == {"train_error", "val_error", "test_error"}
    assert all(0.0 <= v <= 1.0 for v in first.values())
    assert lr_run(TINY_LR_RUN, seed=3) == first
    assert lr_run({**TINY_LR_RUN, "lr": 0.2}, seed=3) != first  # the learning rate reaches the optimiser


def test_lr_run_refuses_a_keep_probability_passed_as_a_rate():
    with pytest.raises(ValueError, match="rate"):
        lr_run({**TINY_LR_RUN, "rate": 1.0}, seed=0)


def test_bare_interval_drops_the_convention_and_refuses_other_types(table):
    d = compare(table, "test_error", {"rate": 0.5}, {"rate": 0.0})
    text = bare_interval(d)
    assert text == d.describe(digits=2).rsplit(" (", 1)[0] and "seeds" not in text
    assert bare_interval(d, scale=1.0, unit="", digits=3).count(" to ") == 1
    with pytest.raises(TypeError, match="PairedDifference"):
        bare_interval(0.3)


def test_length_run_reads_every_budget_and_matches_a_shorter_run():
    settings = {"arm": "standard", "dataset": "mnist1d", "width": 8, "layers": 1, "epochs": 1, "lr": 0.05,
                "rate": 0.1, "momentum": 0.9, "batch_size": 500}
    long = length_run({**settings, "budgets": (1, 2)}, seed=0)
    assert set(long) == {"train_loss_1x", "train_loss_2x", "test_error_1x", "test_error_2x"}
    short = length_run({**settings, "budgets": (1,)}, seed=0)
    assert short["train_loss_1x"] == pytest.approx(long["train_loss_1x"], rel=1e-5)  # a reading is a run's end


def test_length_run_refuses_an_unknown_arm_and_a_keep_probability():
    settings = {"dataset": "mnist1d", "width": 8, "layers": 1, "epochs": 1, "budgets": (1,), "lr": 0.05,
                "momentum": 0.9, "batch_size": 500}
    with pytest.raises(ValueError, match="arm"):
        length_run({**settings, "arm": "early", "rate": 0.1}, seed=0)
    with pytest.raises(ValueError):
        length_run({**settings, "arm": "standard", "rate": 1.0}, seed=0)
