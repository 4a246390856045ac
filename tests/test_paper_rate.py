"""The drop-rate chapter's readings of a Fig. 9 table, on small made-up tables whose answers are known."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from utils.chapters.paper import PAPER_FINDINGS
from utils.chapters.paper_rate import (
    MODES,
    PAPER_RANGES,
    best_rate,
    errors_by_rate,
    flat_band,
    interval_table,
    paired_by_rate,
    picked_by_validation,
    plot_rate_panels,
    rate_words,
    stalled_runs,
    summary_table,
)

RATES = (0.0, 0.25, 0.5, 0.75)
SEEDS = tuple(range(6))


def make_runs(test: dict[str, np.ndarray] | None = None, *, stalled_at: float | None = None) -> pd.DataFrame:
    """A complete table for both modes: `test[mode]` (seeds x rates) or a default with a clear best at 0.25."""
    noise = np.random.default_rng(1).uniform(-0.004, 0.004, (len(SEEDS), len(RATES)))
    default = np.array([0.08, 0.06, 0.062, 0.20]) + noise
    rows = []
    for m, mode in enumerate(MODES):
        errors = default + 0.01 * m if test is None else test[mode]
        for j, rate in enumerate(RATES):
            for i, seed in enumerate(SEEDS):
                train = 0.85 if stalled_at == rate and mode == "fixed width" and seed == 2 else 0.01 * j
                rows.append({"mode": mode, "rate": rate, "seed": seed, "width_used": 100,
                             "train_error": train, "val_error": errors[i, j] + 0.001 * ((i + j) % 3),
                             "test_error": errors[i, j], "wall_s": 1.0})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # the readers must not rely on the row order


def test_errors_by_rate_is_seeds_by_rates_in_order():
    runs = make_runs()
    table = errors_by_rate(runs, "fixed width")
    assert list(table.index) == list(SEEDS) and list(table.columns) == list(RATES)
    assert table.loc[1, 0.25] == runs.query("mode == 'fixed width' and rate == 0.25 and seed == 1")["test_error"].item()
    assert errors_by_rate(runs, "fixed kept units", "train_error").loc[0, 0.75] == pytest.approx(0.03)


@pytest.mark.parametrize("change, error", [
    (lambda runs: runs.drop(index=runs.index[runs["mode"] == "fixed width"][0]), ValueError),  # a missing pair
    (lambda runs: pd.concat([runs, runs[runs["mode"] == "fixed width"].iloc[:1]]), ValueError),  # a repeated pair
    (lambda runs: runs.drop(columns="seed"), ValueError),
    (lambda runs: runs.assign(mode="wide"), ValueError),
    (lambda runs: runs.to_dict("records"), TypeError),
])
def test_errors_by_rate_rejects_incomplete_or_foreign_tables(change, error):
    with pytest.raises(error):
        errors_by_rate(change(make_runs()), "fixed width")


def test_errors_by_rate_rejects_unknown_modes_and_metrics():
    with pytest.raises(ValueError, match="mode"):
        errors_by_rate(make_runs(), "width fixed")  # the page name, not the stored one
    with pytest.raises(ValueError, match="metric"):
        errors_by_rate(make_runs(), "fixed width", "wall_s")


def test_the_modes_page_names_are_the_papers_findings_and_ranges():
    assert set(MODES.values()) <= set(PAPER_FINDINGS) and set(PAPER_RANGES) == set(MODES.values())


def test_summary_table_states_the_sample_sd_and_its_seeds():
    runs = make_runs()
    table = summary_table(runs, "test_error", digits=2)
    assert list(table.columns) == ["width fixed", "kept units fixed"]
    assert list(table.index) == ["0", "0.25", "0.5", "0.75"] and table.index.name == "drop rate"
    errors = errors_by_rate(runs, "fixed width")[0.0] * 100
    assert table.loc["0", "width fixed"] == f"{errors.mean():.2f} ± {np.std(errors, ddof=1):.2f}"
    assert "sd, 6 seeds" in table.columns.name and "test error" in table.columns.name


def test_paired_by_rate_matches_scipys_paired_t_test():
    errors = errors_by_rate(make_runs(), "fixed width")
    table = paired_by_rate(errors, errors[0.0])
    for rate in RATES[1:]:
        diff = errors[rate] - errors[0.0]
        half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
        assert table.loc[rate, "mean"] == pytest.approx(diff.mean())
        assert table.loc[rate, "low"] == pytest.approx(diff.mean() - half)
        assert table.loc[rate, "p_value"] == pytest.approx(stats.ttest_rel(errors[rate], errors[0.0]).pvalue)
        assert table.loc[rate, "resolved"] == (table.loc[rate, "p_value"] < 0.05)
    assert table.loc[0.0, "mean"] == 0.0 and not table.loc[0.0, "resolved"]  # a rate against itself
    assert "(95 % interval, 6 seeds)" in table.loc[0.25, "interval"]


def test_paired_by_rate_compares_two_tables_rate_by_rate():
    runs = make_runs()
    wide, fixed = errors_by_rate(runs, "fixed kept units"), errors_by_rate(runs, "fixed width")
    table = paired_by_rate(wide, fixed)
    assert np.allclose(table["mean"], 0.01) and table["resolved"].all()  # the same 0.01 on every seed
    with pytest.raises(ValueError, match="same seeds"):
        paired_by_rate(wide, fixed.iloc[::-1])
    with pytest.raises(ValueError, match="NaN"):
        paired_by_rate(wide, fixed.where(fixed > 0.07))


def test_the_best_rate_and_the_flat_band():
    errors = errors_by_rate(make_runs(), "fixed width")
    assert best_rate(errors) == 0.25
    # 0.5 is 0.002 worse on average, give or take the noise: whether that is resolved, the paired test decides
    versus_best = paired_by_rate(errors, errors[0.25])
    expected = [rate for rate in RATES if not versus_best.loc[rate, "resolved"]]
    assert flat_band(errors) == expected and 0.25 in expected and 0.75 not in expected


def test_a_flat_band_of_noise_holds_every_rate():
    rng = np.random.default_rng(0)
    noise = {mode: 0.07 + 0.01 * rng.standard_normal((len(SEEDS), len(RATES))) for mode in MODES}
    errors = errors_by_rate(make_runs(noise), "fixed width")
    band = flat_band(errors)
    assert best_rate(errors) in band and len(band) >= 3


def test_best_rate_takes_the_lowest_rate_on_a_tie():
    tie = pd.DataFrame([[0.1, 0.05, 0.05], [0.1, 0.05, 0.05]], columns=[0.0, 0.3, 0.6])
    assert best_rate(tie) == 0.3


@pytest.mark.parametrize("rates, expected", [
    ([0.0, 0.25, 0.5, 0.75], "0 to 0.75"),
    ([0.0, 0.25, 0.75], "0, 0.25 and 0.75"),
    ([0.5], "0.5"),
    ([], "none"),
])
def test_rate_words(rates, expected):
    assert rate_words(rates, RATES) == expected


def test_rate_words_rejects_rates_off_the_grid():
    with pytest.raises(ValueError, match="grid"):
        rate_words([0.3], RATES)


def test_interval_table_writes_points_and_verdicts():
    errors = errors_by_rate(make_runs(), "fixed width")
    table = interval_table({"minus the best": paired_by_rate(errors, errors[0.25])})
    assert table.loc["0.25", "minus the best"] == "0 (the same runs)"
    assert table.loc["0.75", "minus the best"].endswith(": resolved")
    assert table.loc["0.75", "minus the best"].startswith("+")
    with pytest.raises(ValueError):
        interval_table({})
    with pytest.raises(ValueError, match="paired_by_rate"):
        interval_table({"raw": errors})


def test_picked_by_validation_takes_each_seeds_lowest_validation_error():
    runs = make_runs()
    picked = picked_by_validation(runs, "fixed width")
    val, test = errors_by_rate(runs, "fixed width", "val_error"), errors_by_rate(runs, "fixed width")
    for seed in SEEDS:
        rate = val.loc[seed].idxmin()
        assert picked.loc[seed, "rate"] == rate and picked.loc[seed, "test_error"] == test.loc[seed, rate]


def test_stalled_runs_are_those_near_chance():
    assert stalled_runs(make_runs()).empty
    stalled = stalled_runs(make_runs(stalled_at=0.75))
    assert len(stalled) == 1 and stalled.loc[0, "mode"] == "width fixed" and stalled.loc[0, "seed"] == 2
    with pytest.raises(ValueError, match="margin"):
        stalled_runs(make_runs(), margin=0.95)


def test_the_figure_zooms_on_the_band_and_marks_what_is_off_the_scale():
    fig = plot_rate_panels(make_runs(), paper={"width fixed": (0.25, 0.5)}, widths={"width fixed": "n = 100"})
    test_axes = fig.axes[:2]
    bottom, top = test_axes[0].get_ylim()
    assert 0.0 <= bottom < 0.06 and 0.07 < top < 0.20  # the 20 % errors at rate 0.75 are off the scale
    assert test_axes[0].get_title() == "(a) width fixed: n = 100" and test_axes[1].get_title() == "(b) kept units fixed"
    labels = [text.get_text() for text in test_axes[0].texts]
    assert "20%" in labels and "the paper's flat range" in labels
    assert [tick.get_text() for tick in fig.axes[3].get_xticklabels()] == ["0", "0.25", "0.5", "0.75"]
    plt.close(fig)
    fig = plot_rate_panels(make_runs(), ylim=(0.0, 0.3))
    assert fig.axes[0].get_ylim() == (0.0, 0.3) and not fig.axes[0].texts
    plt.close(fig)
    with pytest.raises(ValueError, match="ylim"):
        plot_rate_panels(make_runs(), ylim=(0.2, 0.1))
