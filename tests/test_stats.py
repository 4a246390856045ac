"""utils.stats against SciPy's reference values: the paired t-interval and test, McNemar's exact test, the binomial
standard error, the one decision rule, the argument checks and the exact texts."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from utils.stats import (
    McNemar,
    PairedDifference,
    accuracy_standard_error,
    format_mean_sd,
    interval_text,
    mcnemar,
    mean_sd,
    paired_difference,
)


def reference_interval(a: np.ndarray, b: np.ndarray, level: float) -> tuple[float, float]:
    """The paired t-interval computed independently: mean ± t.ppf((1 + level) / 2, n - 1) * sd / sqrt(n)."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(diff)
    half = stats.t.ppf((1 + level) / 2, n - 1) * np.std(diff, ddof=1) / math.sqrt(n)
    return diff.mean() - half, diff.mean() + half


# --- paired_difference ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
@pytest.mark.parametrize("n", [2, 3, 5, 20])
def test_paired_difference_matches_scipy(n, level):
    rng = np.random.default_rng(1000 * n + int(level * 100))
    for _ in range(5):
        a = rng.normal(0.9, 0.02, n)
        b = a - rng.normal(0.005, 0.01, n)
        result = paired_difference(a, b, level=level)
        reference = stats.ttest_rel(a, b)
        low, high = reference_interval(a, b, level)
        assert result.n == n and result.level == level
        assert result.mean == pytest.approx(np.mean(a - b), rel=1e-12, abs=1e-15)
        assert result.sd == pytest.approx(np.std(a - b, ddof=1), rel=1e-12)
        assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-15)
        assert (result.low, result.high) == pytest.approx((low, high), rel=1e-10, abs=1e-14)
        # scipy's own interval for the paired test (the one-sample interval of the differences) agrees too
        scipy_low, scipy_high = reference.confidence_interval(confidence_level=level)
        assert (result.low, result.high) == pytest.approx((scipy_low, scipy_high), rel=1e-10, abs=1e-14)


def test_paired_difference_accepts_lists_and_ints():
    result = paired_difference([3, 5, 4, 6], [1, 2, 2, 3])
    assert result.mean == pytest.approx(2.5) and result.n == 4
    assert result.p_value == pytest.approx(stats.ttest_rel([3, 5, 4, 6], [1, 2, 2, 3]).pvalue, rel=1e-9)


def test_paired_sd_is_the_sample_sd_not_the_population_sd():
    a, b = np.array([1.0, 2.0, 3.0]), np.zeros(3)
    result = paired_difference(a, b)
    assert result.sd == pytest.approx(1.0) == pytest.approx(np.std(a - b, ddof=1))
    assert not math.isclose(result.sd, np.std(a - b))  # the population sd is sqrt(2/3)
    assert mean_sd(a) == pytest.approx((2.0, 1.0))


def test_resolved_iff_interval_excludes_zero_iff_p_below_one_minus_level():
    rng = np.random.default_rng(7)
    seen = {True: 0, False: 0}
    for _ in range(400):
        n = int(rng.integers(2, 15))
        level = float(rng.choice([0.8, 0.9, 0.95, 0.99]))
        a = rng.normal(0.0, 1.0, n)
        b = a - rng.normal(rng.normal(0.0, 0.6), 1.0, n)
        result = paired_difference(a, b, level=level)
        excludes_zero = result.low > 0 or result.high < 0
        assert result.resolved == excludes_zero == (result.p_value < 1 - level)
        assert result.verdict() == ("resolved" if result.resolved else "not resolved")
        assert result.low <= result.mean <= result.high
        seen[result.resolved] += 1
    assert min(seen.values()) > 50  # both verdicts were exercised


def test_constant_differences_collapse_the_interval():
    a = np.array([0.5, 0.25, 0.75, 0.125])  # binary fractions: a + 0.25 - a is 0.25 exactly, every time
    shifted = paired_difference(a + 0.25, a)
    assert (shifted.mean, shifted.sd, shifted.low, shifted.high) == (0.25, 0.0, 0.25, 0.25)
    assert shifted.p_value == 0.0 and shifted.resolved and shifted.verdict() == "resolved"
    below = paired_difference(a - 0.25, a, level=0.99)
    assert (below.low, below.high, below.p_value, below.resolved) == (-0.25, -0.25, 0.0, True)
    # differences equal only up to rounding (b + 1 - b is not always 1.0) give a tiny sd and the same verdict
    b = np.array([0.9, 0.8, 0.7, 0.6])
    noisy = paired_difference(b + 1.0, b)
    assert 0 < noisy.sd < 1e-15 and noisy.resolved and noisy.p_value < 1e-10
    assert (noisy.low, noisy.high) == pytest.approx((1.0, 1.0), abs=1e-14)
    same = paired_difference(a, a)
    assert (same.mean, same.sd, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 0.0, 1.0)
    assert not same.resolved and same.verdict() == "not resolved"
    with warnings.catch_warnings():  # the choice documented in paired_difference: scipy has no answer here
        warnings.simplefilter("ignore")
        assert math.isnan(stats.ttest_rel(a, a).pvalue)


@pytest.mark.parametrize("a, b, error, match", [
    ([0.9], [0.8], ValueError, "at least two seeds"),
    ([], [], ValueError, "at least two seeds"),
    ([0.9, 0.8, 0.7, 0.6, 0.5], [0.9, 0.8, 0.7, 0.6], ValueError, "unpaired: a has 5 values, b has 4"),
    ([[0.9, 0.8], [0.7, 0.6]], [0.1, 0.2], ValueError, "a must be a 1-D array.*shape \\(2, 2\\)"),
    ([0.9, 0.8], 0.5, ValueError, "b must be a 1-D array.*shape \\(\\)"),
    ([0.9, np.nan, 0.7], [0.1, 0.2, 0.3], ValueError, "a holds NaN or infinite values \\(at positions \\[1\\]\\)"),
    ([0.9, 0.8, 0.7], [0.1, np.inf, 0.3], ValueError, "b holds NaN or infinite"),
    (["x", "y"], [0.1, 0.2], TypeError, "a must be a 1-D array of numbers"),
])
def test_paired_difference_rejects_bad_scores(a, b, error, match):
    with pytest.raises(error, match=match):
        paired_difference(a, b)


@pytest.mark.parametrize("level, error", [(0.0, ValueError), (1.0, ValueError), (95, ValueError),
                                          (float("nan"), ValueError), (-0.5, ValueError),
                                          (True, TypeError), ("0.95", TypeError)])
def test_paired_difference_rejects_bad_levels(level, error):
    with pytest.raises(error, match="level must be a number strictly between 0 and 1"):
        paired_difference([0.9, 0.8], [0.7, 0.7], level=level)


# --- texts ------------------------------------------------------------------------------------------------------------


def test_describe_and_interval_text_exact():
    result = PairedDifference(mean=0.0075, sd=0.01, n=20, low=0.004, high=0.011, level=0.95, p_value=0.001)
    assert result.describe() == "+0.4 to +1.1 points (95 % interval, 20 seeds)"
    assert interval_text(result) == "+0.4 to +1.1 points (95 % interval, 20 seeds): resolved"
    crossing = dataclasses.replace(result, low=-0.00321, high=0.0123, level=0.99, n=5, p_value=0.2)
    assert crossing.describe(digits=2, over="folds") == "-0.32 to +1.23 points (99 % interval, 5 folds)"
    assert interval_text(crossing, scale=1.0, unit="", digits=4) == ("-0.0032 to +0.0123 (99 % interval, 5 seeds): "
                                                                     "not resolved")
    assert dataclasses.replace(result, level=0.975).describe() == "+0.4 to +1.1 points (97.5 % interval, 20 seeds)"
    assert dataclasses.replace(result, level=0.9).describe() == "+0.4 to +1.1 points (90 % interval, 20 seeds)"
    # exact zeros print as +0.0; a tiny negative end keeps its sign, matching the verdict
    zero = PairedDifference(mean=0.0, sd=0.0, n=3, low=-0.0, high=0.0, level=0.95, p_value=1.0)
    assert interval_text(zero) == "+0.0 to +0.0 points (95 % interval, 3 seeds): not resolved"
    tiny = dataclasses.replace(result, low=-0.0001)
    assert interval_text(tiny) == "-0.0 to +1.1 points (95 % interval, 20 seeds): not resolved"


def test_interval_text_from_a_real_result():
    a = np.array([0.912, 0.905, 0.921, 0.917, 0.909])
    b = np.array([0.901, 0.899, 0.915, 0.903, 0.904])
    result = paired_difference(a, b)
    low, high = reference_interval(a, b, 0.95)
    assert interval_text(result, over="folds") == f"{100 * low:+.1f} to {100 * high:+.1f} points (95 % interval, " \
        "5 folds): resolved"


@pytest.mark.parametrize("kwargs, error, match", [
    ({"scale": 0}, ValueError, "scale must be finite and above 0"),
    ({"scale": -100}, ValueError, "scale"),
    ({"digits": -1}, ValueError, "digits must be an integer >= 0"),
    ({"digits": 1.5}, TypeError, "digits"),
    ({"over": ""}, ValueError, "over must be a non-empty string"),
    ({"unit": None}, TypeError, "unit must be a string"),
])
def test_describe_rejects_bad_format_arguments(kwargs, error, match):
    result = paired_difference([0.9, 0.8, 0.85], [0.8, 0.8, 0.8])
    with pytest.raises(error, match=match):
        result.describe(**kwargs)
    with pytest.raises(error, match=match):
        interval_text(result, **kwargs)


def test_interval_text_rejects_other_results():
    with pytest.raises(TypeError, match="result must be a PairedDifference"):
        interval_text((0.1, 0.2))


def test_mean_sd_and_format_mean_sd_exact():
    values = [0.0123, 0.0168, 0.0078, 0.0123]
    mean, sd = mean_sd(values)
    assert mean == pytest.approx(np.mean(values)) and sd == pytest.approx(np.std(values, ddof=1))
    assert format_mean_sd(values) == f"1.23 ± {100 * np.std(values, ddof=1):.2f} (sd, 4 seeds)" == \
        "1.23 ± 0.37 (sd, 4 seeds)"
    assert format_mean_sd(values, scale=1.0, digits=3, over="folds") == "0.012 ± 0.004 (sd, 4 folds)"


@pytest.mark.parametrize("values, error, match", [
    ([0.5], ValueError, "at least two values"),
    ([], ValueError, "at least two values"),
    ([0.5, np.nan], ValueError, "values holds NaN"),
    ([[0.5, 0.6]], ValueError, "values must be a 1-D array"),
])
def test_mean_sd_rejects_bad_values(values, error, match):
    with pytest.raises(error, match=match):
        mean_sd(values)
    with pytest.raises(error, match=match):
        format_mean_sd(values)


# --- accuracy_standard_error -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("accuracy, n", [(0.9, 10_000), (0.5, 100), (0.0, 5), (1.0, 5), (np.float32(0.75), 1),
                                         (0.98, np.int64(500))])
def test_accuracy_standard_error_is_the_binomial_formula(accuracy, n):
    expected = math.sqrt(float(accuracy) * (1 - float(accuracy)) / int(n))
    assert accuracy_standard_error(accuracy, n) == pytest.approx(expected, rel=1e-12, abs=0)
    assert accuracy_standard_error(1 - float(accuracy), n) == pytest.approx(expected, rel=1e-6)  # an error rate


def test_accuracy_standard_error_matches_scipy_binomial_sd():
    assert accuracy_standard_error(0.9, 10_000) == pytest.approx(stats.binom(10_000, 0.9).std() / 10_000, rel=1e-12)
    assert accuracy_standard_error(0.9, 10_000) == pytest.approx(0.003)


@pytest.mark.parametrize("accuracy, n, error, match", [
    (1.2, 100, ValueError, "accuracy must be a number in \\[0, 1\\].*1.2"),
    (-0.1, 100, ValueError, "accuracy must be a number in \\[0, 1\\]"),
    (float("nan"), 100, ValueError, "accuracy must be a number in \\[0, 1\\].*nan"),
    (True, 100, TypeError, "accuracy must be a number"),
    ("0.9", 100, TypeError, "accuracy must be a number"),
    (0.9, 0, ValueError, "n must be an integer >= 1, got 0"),
    (0.9, True, TypeError, "n must be an integer >= 1, got bool"),
    (0.9, 2.5, TypeError, "n must be an integer >= 1, got float"),
])
def test_accuracy_standard_error_rejects_bad_inputs(accuracy, n, error, match):
    with pytest.raises(error, match=match):
        accuracy_standard_error(accuracy, n)


# --- mcnemar ----------------------------------------------------------------------------------------------------------


def correctness(only_a: int, only_b: int, both: int, neither: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-example correctness of two models with the given counts, in a shuffled order."""
    a = np.array([1] * only_a + [0] * only_b + [1] * both + [0] * neither, dtype=bool)
    b = np.array([0] * only_a + [1] * only_b + [1] * both + [0] * neither, dtype=bool)
    order = np.random.default_rng(seed).permutation(len(a))
    return a[order], b[order]


@pytest.mark.parametrize("only_a, only_b, both, neither", [(12, 4, 470, 14), (0, 9, 80, 11), (30, 30, 900, 40),
                                                           (1, 0, 0, 0), (25, 8, 950, 17)])
def test_mcnemar_matches_scipy_binomtest(only_a, only_b, both, neither):
    a, b = correctness(only_a, only_b, both, neither)
    result = mcnemar(a, b)
    assert (result.only_a, result.only_b, result.n) == (only_a, only_b, only_a + only_b + both + neither)
    expected = stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-12)
    assert result.resolved == (expected < 0.05)
    assert result.verdict() == ("resolved" if result.resolved else "not resolved")
    swapped = mcnemar(b, a)
    assert (swapped.only_a, swapped.only_b) == (only_b, only_a)
    assert swapped.p_value == pytest.approx(result.p_value, rel=1e-12)  # two-sided: symmetric


def test_mcnemar_accepts_zero_one_integers_and_lists():
    a, b = correctness(12, 4, 470, 14, seed=3)
    from_ints = mcnemar(a.astype(np.int64), b.astype(np.int8).tolist(), level=0.9)
    assert from_ints == dataclasses.replace(mcnemar(a, b), level=0.9)


def test_mcnemar_without_discordant_examples_is_not_resolved():
    a = np.array([True, False, True, True])
    result = mcnemar(a, a.copy())
    assert (result.only_a, result.only_b, result.n, result.p_value) == (0, 0, 4, 1.0)
    assert not result.resolved


def test_mcnemar_describe_exact():
    result = mcnemar(*correctness(12, 4, 470, 14))
    assert result.describe() == ("A right where B wrong on 12 of 500, the reverse on 4; exact McNemar p = 0.0768: "
                                 "not resolved at 95 %")
    strong = McNemar(only_a=40, only_b=5, n=1000, p_value=1.2e-7, level=0.99)
    assert strong.describe() == ("A right where B wrong on 40 of 1000, the reverse on 5; exact McNemar p < 0.001: "
                                 "resolved at 99 %")


def test_mcnemar_level_is_the_decision_rule():
    a, b = correctness(12, 4, 470, 14)  # p = 0.077
    assert not mcnemar(a, b, level=0.95).resolved and mcnemar(a, b, level=0.9).resolved


@pytest.mark.parametrize("a, b, error, match", [
    ([True, False, True], [True, False], ValueError, "different lengths: correct_a has 3 examples, correct_b has 2"),
    ([], [], ValueError, "empty"),
    ([0.9, 0.1], [1, 0], TypeError, "correct_a must hold booleans or 0/1 integers.*float64"),
    ([1, 0], [2, 0], ValueError, "correct_b must hold booleans or 0/1 integers.*\\[0, 2\\]"),
    ([[True, False]], [True, False], ValueError, "correct_a must be a 1-D array"),
    ([True, None], [True, False], TypeError, "correct_a must hold booleans"),
])
def test_mcnemar_rejects_bad_inputs(a, b, error, match):
    with pytest.raises(error, match=match):
        mcnemar(a, b)


def test_mcnemar_rejects_bad_levels():
    with pytest.raises(ValueError, match="level must be a number strictly between 0 and 1"):
        mcnemar([True, False], [False, True], level=1.5)
