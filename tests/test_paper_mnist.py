"""The Table 2 chapter's readings of the stored runs (utils.chapters.paper_mnist), on small made-up tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from utils.chapters.paper_mnist import (
    FAILED,
    at_rate,
    best_rates,
    bootstrap_difference,
    digit_standard_error,
    failed_counts,
    grid,
    mcnemar_by_seed,
    methods_of,
    norm_table,
    paired_table,
    per_seed,
    plot_lr_curves,
    summary,
)
from utils.chapters.paper_sweeps import DIVERGED_ERROR

N_TEST = 20
SEEDS = (0, 1, 2, 3)
LRS = (0.01, 0.1, 1.0)


def _bits(right: np.ndarray) -> str:
    return np.packbits(right.astype(bool)).tobytes().hex()


def _val(method: str, lr: float, seed: int) -> float:
    """Plain best at 0.01, dropout best at 0.1; plain diverges at 1.0."""
    if method == "no dropout":
        return {0.01: 0.05, 0.1: 0.07, 1.0: DIVERGED_ERROR}[lr] + 0.001 * seed
    return {0.01: 0.08, 0.1: 0.04, 1.0: 0.06}[lr] + 0.002 * seed


@pytest.fixture
def runs() -> pd.DataFrame:
    rows = []
    for method in ("no dropout", "dropout"):
        for lr in LRS:
            for seed in SEEDS:
                val = _val(method, lr, seed)
                right = np.ones(N_TEST, bool)
                right[: seed + (2 if method == "no dropout" else 0)] = False  # plain misses 2 more per seed
                rows.append({"method": method, "lr": lr, "seed": seed, "train_error": val / 2, "val_error": val,
                             "test_error": 1 - right.mean(), "max_unit_norm": 1.5 + lr + (method == "dropout"),
                             "at_radius": 0.1 * seed if method == "dropout" else 0.0,
                             "test_correct": _bits(right), "wall_s": 1.0})
    return pd.DataFrame(rows)


def test_the_grid_and_the_choice_follow_the_mean_validation_error(runs):
    assert methods_of(runs) == ["no dropout", "dropout"]
    table = grid(runs)
    assert list(table.index) == ["no dropout", "dropout"] and list(table.columns) == list(LRS)
    assert table.loc["dropout", 0.1] == pytest.approx(0.04 + 0.002 * np.mean(SEEDS))
    assert best_rates(runs).to_dict() == {"no dropout": 0.01, "dropout": 0.1}


def test_ties_go_to_the_smaller_rate(runs):
    tied = runs.assign(val_error=0.1)
    assert set(best_rates(tied)) == {0.01}


def test_failed_runs_are_counted_per_method_and_rate(runs):
    counts = failed_counts(runs)
    assert counts.loc["no dropout", 1.0] == len(SEEDS)
    assert counts.drop(columns=1.0).to_numpy().sum() == 0 and counts.loc["dropout"].sum() == 0
    assert failed_counts(runs, above=0.05).loc["dropout", 0.01] == len(SEEDS)
    bad = runs.assign(val_error=0.5)  # bad, but far from chance: not failed
    assert failed_counts(bad).to_numpy().sum() == 0 and FAILED > 0.5
    with pytest.raises(ValueError, match="above"):
        failed_counts(runs, above=5)


def test_the_summary_gives_mean_and_sample_sd_over_the_seeds(runs):
    table = summary(runs, best_rates(runs))
    errors = 100 * per_seed(runs, best_rates(runs))["dropout"]
    assert table.loc["dropout", "learning rate"] == "0.1"
    column = f"test error % (sd, {len(SEEDS)} seeds)"
    assert table.loc["dropout", column] == f"{errors.mean():.2f} ± {errors.std(ddof=1):.2f}"


def test_per_seed_and_paired_differences(runs):
    chosen = best_rates(runs)
    errors = per_seed(runs, chosen)
    assert list(errors.index) == list(SEEDS)
    table = paired_table(errors, [("dropout", "no dropout")])
    row = table.loc["dropout − no dropout"]
    assert row["mean (points)"] == pytest.approx(-100 * 2 / N_TEST)  # 2 digits of 20 every seed
    assert row["verdict"] == "resolved" and row["seeds"] == len(SEEDS)
    shared = at_rate(runs, 1.0)
    assert list(shared.columns) == ["no dropout", "dropout"] and (shared["no dropout"] >= DIVERGED_ERROR).all()
    with pytest.raises(ValueError, match="no column"):
        paired_table(errors, [("dropout", "max-norm")])


def test_mcnemar_counts_the_discordant_digits_of_each_seed(runs):
    table = mcnemar_by_seed(runs, best_rates(runs), "dropout", "no dropout", n_test=N_TEST)
    assert list(table["only dropout"]) == [2] * len(SEEDS) and list(table["only no dropout"]) == [0] * len(SEEDS)
    assert set(table["verdict"]) == {"not resolved"}  # 2 against 0: p-value 0.5
    assert "p-value" in table.columns and "p" not in table.columns  # p is the drop rate


def test_the_norm_table_reads_the_chosen_rates(runs):
    table = norm_table(runs, best_rates(runs))
    assert table.loc["dropout", "largest unit norm, median"] == pytest.approx(1.5 + 0.1 + 1)
    assert table.loc["dropout", "units at or above c, mean %"] == pytest.approx(100 * 0.1 * np.mean(SEEDS))
    assert table.loc["no dropout", "units at or above c, mean %"] == 0.0


def test_the_plot_clips_diverged_means_and_stars_the_choice(runs):
    fig, ax = plt.subplots()
    plot_lr_curves(runs, best_rates(runs), ax=ax, span=(0.0, 0.2))
    assert ax.get_xscale() == "log" and ax.get_ylim() == pytest.approx((0.0, 0.204))
    assert max(max(line.get_ydata()) for line in ax.get_lines()) <= 0.2
    assert [line.get_marker() for line in ax.get_lines()].count("^") == 1  # plain's failure at 1.0
    assert any(text.get_text() == f"{DIVERGED_ERROR + 0.0015:.0%}" for text in ax.texts)  # the clipped mean
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 2
    plt.close(fig)


def test_bad_arguments_are_refused(runs):
    with pytest.raises(TypeError, match="DataFrame"):
        grid(runs.to_dict())
    with pytest.raises(ValueError, match="lacks"):
        grid(runs.drop(columns="at_radius"))
    with pytest.raises(ValueError, match="same seeds"):
        grid(runs.iloc[1:])
    with pytest.raises(ValueError, match="no runs"):
        per_seed(runs, {"dropout": 0.3})
    with pytest.raises(ValueError, match="span"):
        plot_lr_curves(runs, best_rates(runs), span=(0.2, 0.1))
    with pytest.raises(ValueError, match="numeric column"):
        grid(runs, "test_correct")


def test_identical_runs_get_no_test_in_the_paired_table(runs):
    errors = per_seed(runs, best_rates(runs))
    errors["copy"] = errors["dropout"]
    row = paired_table(errors, [("copy", "dropout")]).loc["copy − dropout"]
    assert row["verdict"] == "0 (the same runs)" and np.isnan(row["p-value"]) and row["sd (points)"] == 0


def test_the_digit_standard_error_and_the_bootstrap_intervals(runs):
    chosen = best_rates(runs)
    # on seed s the plain net alone misses digits s and s + 1 (see the fixture)
    per_digit = np.zeros(N_TEST)
    for seed in SEEDS:
        per_digit[[seed, seed + 1]] -= 1 / len(SEEDS)
    expected = per_digit.std(ddof=1) / np.sqrt(N_TEST)
    assert digit_standard_error(runs, chosen, "dropout", "no dropout", n_test=N_TEST) == pytest.approx(expected)
    seeds_only = bootstrap_difference(runs, chosen, "dropout", "no dropout", n_test=N_TEST, resample=["seeds"])
    assert seeds_only == pytest.approx((-2 / N_TEST, -2 / N_TEST))  # the same difference on every seed
    both = bootstrap_difference(runs, chosen, "dropout", "no dropout", n_test=N_TEST, n_boot=500, seed=1)
    assert both[0] < -2 / N_TEST < both[1] <= 0
    assert both == bootstrap_difference(runs, chosen, "dropout", "no dropout", n_test=N_TEST, n_boot=500, seed=1)
    with pytest.raises(ValueError, match="resample"):
        bootstrap_difference(runs, chosen, "dropout", "no dropout", n_test=N_TEST, resample=["folds"])
