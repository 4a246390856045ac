"""The recurrent chapter's tables of paired runs with both evaluations side by side, and its forest of contrasts.

`utils.chapters.recurrent` sets out one evaluation at a time (`results_table`, `evaluation_table`). Where the runs
measured the test error twice, in one pass without masks and averaged over masked passes, the page shows both in
one table:
- `regime_table`: one row per arm, its mean errors and its paired interval against a baseline (and, optionally,
  its verdict), under each evaluation;
- `contrast_table`: one row per contrast between two arms (one change each), its paired interval and verdict under
  each evaluation;
- `plot_contrasts`: those contrasts as a forest of intervals, one marker per evaluation.

Every interval is a 95 % paired t-interval over seeds (`utils.stats.paired_difference`), in percentage points.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from utils.chapters.recurrent import MINUS, error_verdict, interval_ends, plot_paired_forest
from utils.stats import PairedDifference, paired_difference

ONE_PASS = "one pass without masks"


def _evaluations(test: Mapping[str, np.ndarray], test_mc: Mapping[str, np.ndarray] | None,
                 passes: int | None) -> dict[str, Mapping[str, np.ndarray]]:
    """The evaluations to show, by their column heading: one pass, and the average over masks if measured."""
    if (test_mc is None) != (passes is None):
        raise ValueError("test_mc and passes go together: give both or neither")
    if not test or any(len(np.asarray(v)) != len(np.asarray(next(iter(test.values())))) for v in test.values()):
        raise ValueError("test must map each arm to one error per seed, the same number of seeds for every arm")
    evaluations: dict[str, Mapping[str, np.ndarray]] = {ONE_PASS: test}
    if test_mc is not None:
        if set(test_mc) != set(test):
            raise ValueError(f"test and test_mc must name the same arms, got {sorted(test)} and {sorted(test_mc)}")
        evaluations[f"averaged over {passes} masked passes"] = test_mc
    return evaluations


def regime_table(train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], labels: Mapping[str, str], *,
                 test_mc: Mapping[str, np.ndarray] | None = None, passes: int | None = None,
                 baseline: str = "none", digits: int = 1, verdicts: bool = True) -> pd.DataFrame:
    """One row per arm: its mean errors, and under each evaluation its paired interval against `baseline`.

    Under each evaluation the row gives the mean test error, the paired interval against `baseline` (points, its ends
    to `digits` decimals) and, with `verdicts`, its verdict. `train`, `test` (one pass without masks) and `test_mc`
    (averaged over `passes` masked passes; optional) map each arm to its error rates, one per seed in the same seed
    order. The baseline's row leaves its intervals blank.
    Chapter: recurrent
    """
    if not isinstance(verdicts, bool):
        raise TypeError(f"verdicts must be True or False, got {verdicts!r}")
    evaluations = _evaluations(test, test_mc, passes)
    if set(train) != set(test) or baseline not in test or not set(test) <= set(labels):
        raise ValueError("train and test must name the same arms, the baseline among them, each with a label")
    against = f"{MINUS} {labels[baseline]}, points"
    rows = {}
    for arm in test:
        row = {("", "training error, %"): f"{100 * np.mean(train[arm]):.1f}"}
        for name, errors in evaluations.items():
            row[(name, "test error, %")] = f"{100 * np.mean(errors[arm]):.1f}"
            row[(name, against)] = ""
            if verdicts:
                row[(name, "verdict")] = ""
            if arm != baseline:
                diff = paired_difference(errors[arm], errors[baseline])
                row[(name, against)] = _unbroken(interval_ends(diff, digits=digits))
                if verdicts:
                    row[(name, "verdict")] = error_verdict(diff)
        rows[labels[arm]] = row
    return _frame(rows, "arm")


def contrast_differences(test: Mapping[str, np.ndarray], test_mc: Mapping[str, np.ndarray] | None,
                         contrasts: Mapping[str, tuple[str, str]], *,
                         passes: int | None = None) -> dict[str, dict[str, PairedDifference]]:
    """For each contrast (its name -> (arm a, arm b)): {evaluation: the paired difference a minus b}.

    Chapter: recurrent
    """
    evaluations = _evaluations(test, test_mc, passes)
    if not all(a in test and b in test and a != b for a, b in contrasts.values()):
        raise ValueError(f"every contrast must set two different arms of {sorted(test)} against each other")
    return {name: {evaluation: paired_difference(errors[a], errors[b]) for evaluation, errors in evaluations.items()}
            for name, (a, b) in contrasts.items()}


def contrast_table(test: Mapping[str, np.ndarray], contrasts: Mapping[str, tuple[str, str]],
                   labels: Mapping[str, str], *, test_mc: Mapping[str, np.ndarray] | None = None,
                   passes: int | None = None) -> pd.DataFrame:
    """One row per contrast, named by what it changes: the arms subtracted, and each evaluation's interval and verdict.

    Under each evaluation the row gives the paired interval of the test error (a minus b, points) and its verdict.
    Chapter: recurrent
    """
    differences = contrast_differences(test, test_mc, contrasts, passes=passes)
    rows = {}
    for name, (a, b) in contrasts.items():
        subtracted = f"({labels[b]})" if "+" in labels[b] else labels[b]
        row = {("", "contrast"): f"{labels[a]} {MINUS} {subtracted}"}
        for evaluation, diff in differences[name].items():
            row[(evaluation, "test error, points")] = _unbroken(interval_ends(diff))
            row[(evaluation, "verdict")] = error_verdict(diff)
        rows[name] = row
    return _frame(rows, "what changes")


def _unbroken(text: str) -> str:
    """`text` with no-break spaces, so that an interval such as '−2.5 to −0.9' stays on one line of a table."""
    return text.replace(" ", "\u00a0")


def _frame(rows: Mapping[str, Mapping[tuple[str, str], str]], corner: str) -> pd.DataFrame:
    """The rows as a table with two header rows, `corner` above the row labels."""
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=[None, corner])
    return table


def plot_contrasts(differences: Mapping[str, Mapping[str, PairedDifference]],
                   arms: Mapping[str, str] | None = None) -> Figure:
    """The paired intervals of `contrast_differences` as a forest, one row per contrast, one marker per evaluation.

    `arms` may map a contrast's name to the arms it subtracts ('naive − Zaremba'), shown beneath the name.
    Chapter: recurrent
    """
    fig = plot_paired_forest(differences)
    ax = fig.axes[0]
    ax.set_xlabel(f"test error, first arm {MINUS} second (points)")
    if arms is not None:
        if set(arms) != set(differences):
            raise ValueError("arms must name the arms of every contrast, and only those")
        # row k stands at y = n - 1 - k, as plot_paired_forest places it
        ax.set_yticks(np.arange(len(differences))[::-1],
                      [f"{textwrap.fill(name, 26)}\n({arms[name]})" for name in differences])
    return fig
