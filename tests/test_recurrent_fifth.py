"""The recurrent chapter's fifth arm in the overfitting regime, and its tables with both evaluations side by side."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from utils.chapters.recurrent import ARM_LABELS
from utils.chapters.recurrent_fifth import overfit_arm_run
from utils.chapters.recurrent_overfit import overfit_run
from utils.chapters.recurrent_tables import contrast_differences, contrast_table, plot_contrasts, regime_table
from utils.sweeps import SWEEPS

TINY = {"drop_rate": 0.25, "dataset": "mnist5k", "n_train": 30, "subset_seed": 0, "hidden": 4, "epochs": 1,
        "batch_size": 10, "lr": 1e-3}


def test_the_fifth_arm_sweep_pairs_with_the_overfitting_sweep():
    arm, overfit = SWEEPS["recurrent_overfit_arm"], SWEEPS["recurrent_overfit"]
    assert arm.parameters == overfit.parameters and arm.seeds == overfit.seeds
    assert arm.metrics == overfit.metrics
    assert arm.function() is overfit_arm_run


def test_overfit_arm_run_returns_the_sweeps_metrics_and_repeats():
    result = overfit_arm_run({**TINY, "scheme": "recurrent_sequence"}, 0)
    assert set(result) == {"train_error", "val_error", "test_error", "test_error_mc"}
    assert all(0.0 <= v <= 1.0 for v in result.values())
    assert overfit_arm_run({**TINY, "scheme": "recurrent_sequence"}, 0) == result


@pytest.mark.parametrize("scheme", ["zaremba", "naive"])
def test_overfit_arm_run_gives_the_overfitting_runs_for_their_schemes(scheme):
    # the same settings and seed give the same run as the stored sweep's: the arms pair up seed by seed
    assert overfit_arm_run({**TINY, "scheme": scheme}, 1) == overfit_run({**TINY, "scheme": scheme}, 1)


def test_overfit_arm_run_rejects_an_unknown_scheme():
    with pytest.raises(ValueError):
        overfit_arm_run({**TINY, "scheme": "gal"}, 0)


def _errors(shift: float) -> dict[str, np.ndarray]:
    base = np.array([0.10, 0.12, 0.11, 0.09, 0.10])
    return {"none": base, "naive": base - shift + np.array([0.0, 0.002, -0.001, 0.001, 0.0]),
            "zaremba": base + np.array([0.01, -0.01, 0.0, 0.005, -0.004])}


def test_regime_table_sets_both_evaluations_side_by_side():
    test, test_mc = _errors(0.03), _errors(0.02)
    table = regime_table(_errors(0.05), test, ARM_LABELS, test_mc=test_mc, passes=30)
    assert isinstance(table.columns, pd.MultiIndex)
    assert [c for c in table.columns.get_level_values(0).unique() if c] == [
        "one pass without masks", "averaged over 30 masked passes"]
    assert table.loc[ARM_LABELS["naive"], ("one pass without masks", "verdict")] == "resolved better"
    assert table.loc[ARM_LABELS["zaremba"], ("averaged over 30 masked passes", "verdict")] == "not resolved"
    assert table.loc[ARM_LABELS["none"], ("one pass without masks", "verdict")] == ""
    one_pass = regime_table(_errors(0.05), test, ARM_LABELS)
    assert set(one_pass.columns.get_level_values(0)) == {"", "one pass without masks"}
    with pytest.raises(ValueError):
        regime_table(_errors(0.05), test, ARM_LABELS, test_mc=test_mc)  # passes missing


def test_contrast_table_and_forest_name_each_change():
    test, test_mc = _errors(0.03), _errors(0.02)
    contrasts = {"a fresh recurrent mask": ("naive", "zaremba")}
    table = contrast_table(test, contrasts, ARM_LABELS, test_mc=test_mc, passes=30)
    assert table.columns.names[1] == "what changes" and list(table.index) == ["a fresh recurrent mask"]
    assert table.iloc[0][("", "contrast")].startswith(ARM_LABELS["naive"])
    differences = contrast_differences(test, test_mc, contrasts, passes=30)
    assert differences["a fresh recurrent mask"]["one pass without masks"].high < 0
    fig = plot_contrasts(differences)
    assert "second" in fig.axes[0].get_xlabel()
    named = plot_contrasts(differences, {"a fresh recurrent mask": "naive − Zaremba"})
    assert named.axes[0].get_yticklabels()[0].get_text().endswith("(naive − Zaremba)")
    with pytest.raises(ValueError):
        plot_contrasts(differences, {"another": "naive − Zaremba"})
    with pytest.raises(ValueError):
        contrast_table(test, {"nothing": ("naive", "naive")}, ARM_LABELS)


def test_regime_table_can_leave_out_its_verdicts_and_give_two_decimals():
    test, test_mc = _errors(0.03), _errors(0.02)
    table = regime_table(_errors(0.05), test, ARM_LABELS, test_mc=test_mc, passes=30, digits=2, verdicts=False)
    assert "verdict" not in set(table.columns.get_level_values(1))
    ends = table.loc[ARM_LABELS["naive"], ("one pass without masks", "− no dropout, points")]
    assert all(len(end.split(".")[1]) == 2 for end in ends.split("\u00a0to\u00a0"))
    assert table.loc[ARM_LABELS["none"], ("one pass without masks", "− no dropout, points")] == ""
    with pytest.raises(TypeError):
        regime_table(_errors(0.05), test, ARM_LABELS, verdicts="no")
