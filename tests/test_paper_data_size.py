"""The data-set size chapter's helpers: the plan, the paired gains, their verdicts, the shape test and the figures,
checked on small made-up tables whose answers are known."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from utils.chapters.paper_data_size import (
    COLUMNS,
    NOT_COMPARABLE,
    compare_with_paper,
    error_table,
    errors,
    gain_table,
    gain_text,
    gains,
    interval_ends,
    plan_table,
    plot_errors,
    plot_gains,
    resolve_chance,
    seeds_needed,
    shape,
    size_list,
    sizes_where,
    underfit_sizes,
)
from utils.chapters.paper_sweeps import subset
from utils.seeding import seed_everything
from utils.stats import paired_difference
from utils.sweeps import SWEEPS
from utils.torch_models import make_mlp

matplotlib.use("Agg")

SIZES = (100, 1_000, 10_000)
UPDATES = 1_000


def make_runs(gain_by_size=(0.0, 0.05, 0.01), seeds=range(6), noise=0.01, seed=0):
    """A table like a stored fig10 sweep: dropout's error lower by `gain_by_size` plus per-seed noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for size, gain in zip(SIZES, gain_by_size):
        steps = -(-size // 100)
        epochs = -(-UPDATES // steps)
        for s in seeds:
            base = 0.3 + rng.normal(0, noise)
            for method, error in (("no dropout", base), ("dropout", base - gain + rng.normal(0, noise))):
                rows.append({"dataset": "made-up", "size": size, "method": method, "seed": s, "epochs": epochs,
                             "updates": epochs * steps, "train_error": 0.0, "test_error": error})
    return pd.DataFrame(rows)


def test_the_chapters_sweeps_store_the_columns_the_helpers_read():
    for name in ("fig10_mnist1d", "fig10_mnist5k"):
        assert set(COLUMNS) <= set(SWEEPS[name].columns)


def test_errors_are_seeds_by_sizes():
    runs = make_runs()
    table = errors(runs, "dropout")
    assert table.shape == (6, 3) and list(table.columns) == list(SIZES)
    expected = runs[(runs["method"] == "dropout") & (runs["size"] == 1_000)].sort_values("seed")["test_error"]
    np.testing.assert_array_equal(table[1_000].to_numpy(), expected.to_numpy())


def test_the_plan_shows_equal_updates_and_very_different_epochs():
    plan = plan_table(make_runs())
    assert list(plan.index) == ["100", "1,000", "10,000"]  # sizes as a reader writes them
    assert list(plan["minibatches per epoch"]) == [1, 10, 100]
    assert list(plan["epochs"]) == [1_000, 100, 10] and set(plan["updates"]) == {UPDATES}


def test_the_plan_refuses_runs_of_one_size_with_different_budgets():
    runs = make_runs()
    runs.loc[0, "updates"] += 1
    with pytest.raises(ValueError, match="different numbers"):
        plan_table(runs)


def test_the_gains_are_paired_differences_over_seeds():
    runs = make_runs()
    found = gains(runs)
    assert list(found) == list(SIZES)
    for size, gain in found.items():
        plain = runs[(runs["size"] == size) & (runs["method"] == "no dropout")].sort_values("seed")["test_error"]
        drop = runs[(runs["size"] == size) & (runs["method"] == "dropout")].sort_values("seed")["test_error"]
        assert gain == paired_difference(plain.to_numpy(), drop.to_numpy())


def test_pairs_follow_the_seed_not_the_row_order():
    runs = make_runs()
    shuffled = runs.sample(frac=1.0, random_state=1)
    assert gains(shuffled) == gains(runs)


def test_the_verdicts_sort_the_sizes():
    found = gains(make_runs(gain_by_size=(0.0, 0.05, -0.05)))
    assert sizes_where(found, "helps") == [1_000]
    assert sizes_where(found, "hurts") == [10_000]
    assert sizes_where(found, "not resolved") == [100]
    with pytest.raises(ValueError, match="outcome"):
        sizes_where(found, "maybe")


def test_the_gain_table_has_one_row_per_size_with_its_interval_and_verdict():
    runs = make_runs()
    table = gain_table(runs)
    assert list(table.index) == [f"{size:,}" for size in SIZES]
    assert list(table["verdict"]) == [gain.verdict() for gain in gains(runs).values()]
    assert table.loc["1,000", "verdict"] == "resolved" and table.loc["1,000", "gain, points"].startswith("+")
    assert "(mean ± sd, 6 seeds)" in table.columns[0]


def test_the_error_table_gives_mean_and_sample_sd_in_percent():
    runs = make_runs()
    table = error_table(runs, "test_error")
    values = errors(runs, "dropout", "test_error")[1_000]
    expected = f"{100 * values.mean():.1f} ± {100 * values.std(ddof=1):.1f}"
    assert table.loc["1,000", "dropout, % (mean ± sd, 6 seeds)"] == expected
    assert error_table(runs).iloc[0, 0] == "0.0 ± 0.0"  # the made-up training errors are all 0


def test_the_shape_finds_a_rise_and_a_fall_only_when_both_are_resolved():
    peaked = shape(make_runs(gain_by_size=(0.0, 0.05, 0.0)))
    assert peaked.peak == 1_000 and peaked.rises and peaked.falls
    rising = shape(make_runs(gain_by_size=(0.0, 0.03, 0.05)))
    assert rising.peak == 10_000 and not rising.falls
    flat = shape(make_runs(gain_by_size=(0.0, 0.0, 0.0), noise=0.02))
    assert not (flat.rises and flat.falls)
    assert peaked.summary() == "a rise and a fall, both resolved"
    assert rising.summary().startswith("a rise (resolved)")


def test_the_comparison_with_the_paper_gives_each_finding_its_verdicts():
    table = compare_with_paper({"A": make_runs(gain_by_size=(0.0, 0.05, 0.0))})
    assert list(table.index) == ["no improvement on the two smallest sizes",
                                 "the gain grows with the size up to a point", "then shrinks"]
    assert table.loc["no improvement on the two smallest sizes", "A"].startswith("100: ")
    assert "1,000: +4.8 points, resolved" in table.loc["no improvement on the two smallest sizes", "A"]
    assert table.loc["then shrinks", "A"].endswith(", resolved")


def test_sizes_read_as_words():
    assert size_list([100, 500, 1_000]) == "100, 500 and 1,000"
    assert size_list([50_000]) == "50,000"
    assert size_list([]) == "none" and size_list([], none="no size") == "no size"


def test_unpaired_or_incomplete_runs_are_refused():
    runs = make_runs()
    with pytest.raises(ValueError, match="unpaired"):
        gains(runs.drop(index=runs.index[0]))
    with pytest.raises(ValueError, match="methods"):
        gains(runs[runs["method"] == "dropout"])
    with pytest.raises(ValueError, match="repeats"):
        gains(pd.concat([runs, runs.iloc[:1]]))
    with pytest.raises(ValueError, match="column"):
        gains(runs.drop(columns="updates"))
    with pytest.raises(ValueError, match="two seeds"):
        gains(make_runs(seeds=[0]))
    with pytest.raises(ValueError, match="metric"):
        gains(runs, metric="val_error")
    with pytest.raises(TypeError, match="DataFrame"):
        gains(runs.to_dict())


def test_the_figures_have_one_panel_per_data_set_on_a_log_size_axis():
    tables = {"A": make_runs(), "B": make_runs(seed=1)}
    for figure in (plot_errors(tables), plot_gains(tables)):
        axes = figure.axes
        assert [ax.get_title() for ax in axes] == ["A", "B"]
        assert all(ax.get_xscale() == "log" for ax in axes)
        plt.close(figure)
    with pytest.raises(ValueError, match="non-empty"):
        plot_gains({})


def test_seeds_needed_follows_the_power_of_the_paired_t_test():
    big = paired_difference(np.full(5, 0.05) + np.array([0.01, -0.01, 0.0, 0.005, -0.005]), np.zeros(5))
    assert seeds_needed(big) <= 3
    small = paired_difference(np.array([0.01, -0.01, 0.02, 0.0, -0.005]), np.zeros(5))
    n = seeds_needed(small)
    assert n is not None and n > 10
    # simulated at n seeds: about 80 % of the 95 % paired t-intervals exclude 0
    draws = np.random.default_rng(0).normal(small.mean, small.sd, size=(4000, n))
    half_width = stats.t.ppf(0.975, n - 1) * draws.std(axis=1, ddof=1) / np.sqrt(n)
    assert 0.77 < np.mean(np.abs(draws.mean(axis=1)) > half_width) < 0.83
    assert seeds_needed(small, power=0.5) < n
    assert resolve_chance(small, n) >= 0.8 > resolve_chance(small, n - 1)
    assert resolve_chance(small, 5) < resolve_chance(small, 50) < resolve_chance(small, 500)
    with pytest.raises(ValueError, match="n must"):
        resolve_chance(small, 1)
    assert seeds_needed(paired_difference([0.01, -0.01], [0.0, 0.0])) is None
    with pytest.raises(ValueError, match="power"):
        seeds_needed(big, power=1.0)


def test_both_networks_of_a_pair_start_from_the_same_weights_on_the_same_set():
    # what size_run does for each method: the seed's subset, then train_fresh_mlp (seed_everything, make_mlp)
    x, y = np.random.default_rng(0).normal(size=(200, 5)), np.repeat(np.arange(10), 20)
    assert all(np.array_equal(a, b) for a, b in zip(subset(x, y, 50, seed=3), subset(x, y, 50, seed=3)))
    weights = []
    for rates in ({}, {"drop_rate": 0.5, "input_drop_rate": 0.2}):
        seed_everything(3)
        model = make_mlp(40, [256, 256], 10, **rates)
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))


def test_sizes_where_a_network_underfits_are_marked_not_comparable():
    runs = make_runs()
    assert underfit_sizes(runs) == []
    runs.loc[(runs["size"] == 10_000) & (runs["method"] == "dropout"), "train_error"] = 0.4
    assert underfit_sizes(runs) == [10_000]
    table = gain_table(runs)
    assert table.loc["10,000", "verdict"] == NOT_COMPARABLE and "p" not in table.columns
    assert table.loc["10,000", ["gain, points", "95 % interval"]].tolist() == ["–", "–"]  # no number to misread
    assert table.loc["1,000", "gain, points"] != "–"  # the sizes that are compared keep theirs
    assert compare_with_paper({"A": runs}).loc["then shrinks", "A"] == NOT_COMPARABLE
    figure = plot_gains({"A": runs})
    assert len(figure.axes[0].get_xticks()) == 2  # the underfitting size is left out
    plt.close(figure)
    with pytest.raises(ValueError, match="threshold"):
        underfit_sizes(runs, threshold=1.5)


def test_a_rising_training_error_below_the_underfit_level_is_a_caveat_not_a_verdict():
    runs = make_runs(gain_by_size=(0.0, 0.05, 0.0))
    assert not shape(runs).training_rises and shape(runs).caveat() == ""
    runs.loc[(runs["size"] == 10_000) & (runs["method"] == "dropout"), "train_error"] = 0.02  # above ONSET
    assert underfit_sizes(runs) == []  # below the level at which it underfits: still compared
    peaked = shape(runs)
    assert peaked.falls and peaked.training_rises and peaked.onset == pytest.approx(0.02)
    assert peaked.summary() == "a rise and a fall, both resolved"  # the verdicts stand
    assert peaked.caveat() == "dropout's training error 2.0 % at 10,000"
    cell = compare_with_paper({"A": runs}).loc["then shrinks", "A"]
    assert cell.endswith(", resolved (caveat: dropout's training error 2.0 % at 10,000)")


def test_a_resolved_loss_is_named_as_one_in_the_gain_table():
    runs = make_runs(gain_by_size=(0.0, 0.05, -0.05))
    table = gain_table(runs)
    assert table.loc["10,000", "verdict"] == "resolved (a loss)" and table.loc["1,000", "verdict"] == "resolved"
    assert table.loc["1,000", "95 % interval"].count(".") == 2  # one decimal at each end


def test_an_interval_end_near_zero_keeps_two_decimals_and_its_sign():
    near = paired_difference([0.010, 0.0105, 0.0095, 0.0102], [0.0102, 0.0106, 0.0099, 0.0106])
    assert near.high < 0 and round(100 * near.high, 1) == 0.0
    assert interval_ends(near).endswith(f"{100 * near.high:+.2f}") and "-0.0 " not in interval_ends(near) + " "
    wide = paired_difference([0.30, 0.32, 0.31], [0.28, 0.29, 0.30])
    assert interval_ends(wide) == f"{100 * wide.low:+.1f} to {100 * wide.high:+.1f}"
    assert gain_text(wide) == f"{100 * wide.mean:+.1f} points ({interval_ends(wide)})"
