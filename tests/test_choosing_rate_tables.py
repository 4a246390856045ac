"""Tests for the chapter on choosing the rate: reading training curves, the summary table and the seeds' text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from utils.chapters.choosing_rate_tables import best_checkpoints, seeds_text, summary_table
from utils.stats import paired_difference


@pytest.fixture
def curves() -> pd.DataFrame:
    """Two arms x three seeds, test error read at five checkpoints of 10 epochs (every 2 epochs)."""
    rows = []
    readings = {
        ("none", 0): [0.30, 0.20, 0.15, 0.16, 0.17],
        ("none", 1): [0.31, 0.18, 0.18, 0.15, 0.16],  # a tie at the 2nd and 3rd: the earlier wins
        ("none", 2): [0.29, 0.22, 0.16, 0.16, 0.14],
        ("standard", 0): [0.32, 0.21, 0.16, 0.15, 0.15],
        ("standard", 1): [0.33, 0.20, 0.15, 0.16, 0.16],
        ("standard", 2): [0.31, 0.19, 0.17, 0.15, 0.16],
    }
    for (arm, seed), values in readings.items():
        rows.append({"schedule": arm, "seed": seed, "wall_s": 1.0,
                     **{f"test_error_{k}": v for k, v in enumerate(values, start=1)}})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # row order must not matter


def test_best_checkpoints_finds_the_epoch_the_lowest_the_last_and_the_plateau(curves):
    got = best_checkpoints(curves, prefix="test_error", epochs=10, schedule="none")
    assert list(got.index) == [0, 1, 2]
    assert list(got["best_epoch"]) == [6, 8, 10]
    assert np.allclose(got["best"], [0.15, 0.15, 0.14])
    assert np.allclose(got["final"], [0.17, 0.16, 0.14])
    assert np.allclose(got["plateau"], [np.mean([0.15, 0.16, 0.17]), np.mean([0.18, 0.15, 0.16]),
                                        np.mean([0.16, 0.16, 0.14])])


def test_best_checkpoints_breaks_ties_toward_the_earlier_checkpoint():
    table = pd.DataFrame([{"seed": 0, "loss_1": 0.5, "loss_2": 0.2, "loss_3": 0.2, "loss_4": 0.3}])
    assert best_checkpoints(table, prefix="loss", epochs=8)["best_epoch"].iloc[0] == 4


def test_best_checkpoints_refuses_bad_input(curves):
    with pytest.raises(TypeError, match="DataFrame"):
        best_checkpoints(curves.to_dict(), prefix="test_error", epochs=10)
    with pytest.raises(ValueError, match="no columns train_loss_"):
        best_checkpoints(curves, prefix="train_loss", epochs=10)
    with pytest.raises(ValueError, match="at least three checkpoint columns"):
        best_checkpoints(pd.DataFrame([{"seed": 0, "loss_1": 0.5, "loss_2": 0.2}]), prefix="loss", epochs=10)
    with pytest.raises(ValueError, match="equal checkpoints"):
        best_checkpoints(curves, prefix="test_error", epochs=12, schedule="none")
    with pytest.raises(ValueError, match="several runs per seed"):
        best_checkpoints(curves, prefix="test_error", epochs=10)
    with pytest.raises(ValueError, match="no stored run"):
        best_checkpoints(curves, prefix="test_error", epochs=10, schedule="late")
    with pytest.raises(ValueError, match="lacks the column"):
        best_checkpoints(curves, prefix="test_error", epochs=10, regime="overfitting")
    gappy = curves.drop(columns="test_error_3")
    with pytest.raises(ValueError, match="without gaps"):
        best_checkpoints(gappy, prefix="test_error", epochs=8, schedule="none")


def test_summary_table_writes_points_and_nats_with_their_verdicts():
    errors = paired_difference([0.12, 0.13, 0.125], [0.10, 0.11, 0.104])  # about +2 points, resolved
    losses = paired_difference([0.51, 0.49, 0.50], [0.50, 0.50, 0.50])  # about 0 nats, not resolved
    table = summary_table([("batch", "big − small", errors, "points"), ("length", "3× − 1×", losses, "nats")])
    assert list(table.columns) == ["question", "a − b", "interval", "verdict"]
    assert list(table["verdict"]) == ["resolved", "not resolved"]
    assert table["interval"].iloc[0] == "+1.89 to +2.18"  # points: bare, two decimals
    assert table["interval"].iloc[1].endswith(" nats")
    assert len(table["interval"].iloc[1].split(" to ")[0].split(".")[1]) == 3  # three decimals for nats


def test_summary_table_refuses_bad_rows():
    d = paired_difference([0.1, 0.2], [0.1, 0.1])
    with pytest.raises(ValueError, match="rows is empty"):
        summary_table([])
    with pytest.raises(ValueError, match="unit must be"):
        summary_table([("q", "a − b", d, "percent")])
    with pytest.raises(ValueError, match="each row is"):
        summary_table([("q", d, "points")])
    with pytest.raises(TypeError, match="PairedDifference"):
        summary_table([("q", "a − b", 0.5, "points")])


def test_seeds_text_names_a_run_of_seeds_or_lists_them():
    assert seeds_text(range(8)) == "8 seeds (0 to 7)"
    assert seeds_text((3, 1, 2)) == "3 seeds (1 to 3)"
    assert seeds_text([0, 4, 9]) == "3 seeds (0, 4, 9)"
    with pytest.raises(ValueError, match="at least two"):
        seeds_text([5])
    with pytest.raises(ValueError, match="repeat"):
        seeds_text([1, 1, 2])
