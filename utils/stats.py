"""The book's statistics: how sure a comparison of two models is, from paired runs or from one shared test set.

`paired_difference` compares two set-ups run on the same seeds (or folds) with a paired t-interval of the mean
difference; `mcnemar` compares two trained models on the same test examples with the exact McNemar test;
`mean_sd`, `format_mean_sd` and `accuracy_standard_error` state a spread and say which spread it is. The one
decision rule, everywhere in the book: a difference is *resolved* when its two-sided interval at `level` (95 % unless
said otherwise) excludes 0, which is the same as its two-sided p-value being below 1 - level; otherwise it is *not
resolved*, and the text says so rather than naming a winner. NumPy and SciPy only: no framework is imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from utils.checks import check_count, check_positive

# --- private checks and formatting (the public functions check their arguments once, then call these) -------------


def _check_level(level: float) -> float:
    """`level` as a float strictly between 0 and 1, or a clear error."""
    if isinstance(level, bool) or not isinstance(level, Real):
        raise TypeError(f"level must be a number strictly between 0 and 1 (e.g. 0.95), "
                        f"got {type(level).__name__}: {level!r}")
    level = float(level)
    if not 0.0 < level < 1.0:  # also false for NaN
        raise ValueError(f"level must be a number strictly between 0 and 1 (e.g. 0.95), got {level}")
    return level


def _check_text(value: str, name: str, *, allow_empty: bool = False) -> str:
    """`value` if it is a string (non-empty unless `allow_empty`), or a clear error."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}: {value!r}")
    if not value and not allow_empty:
        raise ValueError(f"{name} must be a non-empty string (e.g. 'seeds' or 'folds'), got ''")
    return value


def _check_format(scale: float, digits: int, over: str, unit: str = "") -> tuple[float, int, str, str]:
    """The formatting arguments shared by the describe functions, checked."""
    return (check_positive(scale, "scale"), check_count(digits, "digits", minimum=0), _check_text(over, "over"),
            _check_text(unit, "unit", allow_empty=True))


def _as_scores(values: ArrayLike, name: str) -> np.ndarray:
    """`values` as a 1-D float64 array of finite numbers (its length is checked by the caller), or a clear error."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a 1-D array of numbers, got {type(values).__name__}: {error}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array (one score per seed or fold), got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name} holds NaN or infinite values (at positions {bad[:10].tolist()}): drop that run "
                         "from both sides of the comparison, or rerun it")
    return array


def _as_correct(values: ArrayLike, name: str) -> np.ndarray:
    """`values` as a 1-D boolean array of per-example correctness (booleans or 0/1 integers), or a clear error."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-example correctness, got shape {array.shape}")
    if array.dtype == np.bool_ or array.size == 0:  # an empty list is float64: its length is checked by the caller
        return array.astype(bool)
    if np.issubdtype(array.dtype, np.integer) and np.isin(array, (0, 1)).all():
        return array.astype(bool)
    if np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold booleans or 0/1 integers (right or wrong on each example), got values "
                         f"{np.unique(array)[:10].tolist()}")
    raise TypeError(f"{name} must hold booleans or 0/1 integers (right or wrong on each example), got dtype "
                    f"{array.dtype}: pass `predictions == labels`, not probabilities or accuracies")


def _percent(level: float) -> str:
    """A level as a percentage for text: '95 %' when it is a whole percent, else one decimal ('97.5 %')."""
    percent = level * 100.0
    if abs(percent - round(percent)) < 1e-9:
        return f"{round(percent)} %"
    if abs(percent - round(percent, 1)) < 1e-9:
        return f"{percent:.1f} %"
    return f"{percent:.6g} %"  # a finer level (0.9995) keeps the digits it needs


def _signed(value: float, digits: int) -> str:
    """`value` with its sign always shown; an exact zero (also -0.0) prints as +0, a tiny negative one as -0."""
    return f"{value + 0.0:+.{digits}f}"


def _p_text(p_value: float) -> str:
    """A p-value for text: 'p = 0.077', 'p = 1', or 'p < 0.001'."""
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3g}"


# --- paired runs: the paired t-interval ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedDifference:
    """The mean of paired differences a - b with its two-sided t-interval and paired t-test p-value.

    `mean` and `sd` (sample sd, ddof=1) are those of the n differences; [`low`, `high`] is the t-interval at `level`,
    mean ± t_{(1 + level)/2, n - 1} sd / sqrt(n); `p_value` is the two-sided paired t-test's, as
    `scipy.stats.ttest_rel(a, b).pvalue`. Build it with `paired_difference`; `resolved` is the book's decision rule.
    Chapters: overfitting, ensemble, paper_mnist, paper_rate, paper_data_size, tutorials_offline, mc_dropout
    """

    mean: float
    sd: float
    n: int
    low: float
    high: float
    level: float
    p_value: float

    @property
    def resolved(self) -> bool:
        """Whether the interval excludes 0 (equivalently p_value < 1 - level): the one decision rule."""
        return self.low > 0.0 or self.high < 0.0

    def verdict(self) -> str:
        """'resolved' when the interval excludes 0, else 'not resolved'."""
        return "resolved" if self.resolved else "not resolved"

    def describe(self, *, scale: float = 100.0, unit: str = "points", digits: int = 1, over: str = "seeds") -> str:
        """The interval as text, e.g. '+0.4 to +1.1 points (95 % interval, 20 seeds)'.

        Both ends are multiplied by `scale` (100: accuracies as percentage points) and always carry a sign; an end
        that rounds to zero keeps its sign (-0.0), so the text never hides on which side of 0 it lies. `unit` may be
        '' for none; `over` names what the n pairs are ('seeds', 'folds').
        """
        scale, digits, over, unit = _check_format(scale, digits, over, unit)
        unit_text = f" {unit}" if unit else ""
        return (f"{_signed(self.low * scale, digits)} to {_signed(self.high * scale, digits)}{unit_text} "
                f"({_percent(self.level)} interval, {self.n} {over})")


def paired_difference(a: ArrayLike, b: ArrayLike, *, level: float = 0.95) -> PairedDifference:
    """Compare two set-ups run on the same seeds (or folds): the mean of a - b, its t-interval and paired p-value.

    `a` and `b` hold one finite score per seed, in the same seed order, at least two each. The interval is the
    two-sided Student t-interval of the mean difference at `level`; `p_value` equals
    `scipy.stats.ttest_rel(a, b).pvalue`. When every difference is the same number (sd == 0), SciPy returns NaN;
    here the interval collapses to [mean, mean] and the p-value is 0.0 if that mean is not 0 (a difference that
    never varies is resolved) and 1.0 if it is 0 (the two set-ups scored the same on every seed).
    Chapters: overfitting, ensemble, paper_mnist, paper_rate, paper_data_size, tutorials_offline, mc_dropout
    """
    level = _check_level(level)
    a, b = _as_scores(a, "a"), _as_scores(b, "b")
    if len(a) != len(b):
        raise ValueError(f"unpaired: a has {len(a)} values, b has {len(b)}; pass one score per seed (or fold) for "
                         "each, in the same order")
    n = len(a)
    if n < 2:
        raise ValueError(f"a paired comparison needs at least two seeds (pairs) to estimate the spread, got {n}")
    diff = a - b
    if not np.isfinite(diff).all():
        raise ValueError("a - b overflows to infinity: the scores are too large to compare")
    if (diff == diff[0]).all():  # no spread: the t statistic is undefined, decide by the mean alone
        mean = float(diff[0])
        return PairedDifference(mean=mean, sd=0.0, n=n, low=mean, high=mean, level=level,
                                p_value=0.0 if mean != 0.0 else 1.0)
    mean, sd = float(diff.mean()), float(diff.std(ddof=1))
    standard_error = sd / math.sqrt(n)
    half_width = float(stats.t.ppf(0.5 + level / 2.0, df=n - 1)) * standard_error
    p_value = float(2.0 * stats.t.sf(abs(mean / standard_error), df=n - 1))
    return PairedDifference(mean=mean, sd=sd, n=n, low=mean - half_width, high=mean + half_width, level=level,
                            p_value=min(p_value, 1.0))


def interval_text(result: PairedDifference, *, scale: float = 100.0, unit: str = "points", digits: int = 1,
                  over: str = "seeds") -> str:
    """The interval and the verdict, e.g. '+0.4 to +1.1 points (95 % interval, 20 seeds): resolved'.

    The same text as `result.describe(...)`, with the same arguments, followed by the verdict.
    Chapters: overfitting, ensemble, paper_mnist, paper_rate, paper_data_size, tutorials_offline, mc_dropout
    """
    if not isinstance(result, PairedDifference):
        raise TypeError(f"result must be a PairedDifference (from paired_difference), got {type(result).__name__}")
    return f"{result.describe(scale=scale, unit=unit, digits=digits, over=over)}: {result.verdict()}"


# --- spreads ---------------------------------------------------------------------------------------------------------


def mean_sd(values: ArrayLike) -> tuple[float, float]:
    """Return the mean and the sample standard deviation (ddof=1) of at least two finite values.

    Chapters: overfitting, ensemble, paper_mnist, paper_rate, paper_data_size, tutorials_offline, mc_dropout
    """
    return _mean_sd(_as_scores(values, "values"))


def _mean_sd(values: np.ndarray) -> tuple[float, float]:
    """The mean and sample sd of checked finite values, after checking there are at least two."""
    if len(values) < 2:
        raise ValueError(f"a sample standard deviation needs at least two values, got {len(values)}")
    return float(values.mean()), float(values.std(ddof=1))


def format_mean_sd(values: ArrayLike, *, scale: float = 100.0, digits: int = 2, over: str = "seeds") -> str:
    """Format values as 'mean ± sd' saying which spread it is and over how many, e.g. '1.23 ± 0.45 (sd, 10 seeds)'.

    Both numbers are multiplied by `scale` (100: fractions as percentages); the sd is the sample sd (ddof=1).
    Chapters: overfitting, ensemble, paper_mnist, paper_rate, paper_data_size, tutorials_offline, mc_dropout
    """
    scale, digits, over, _ = _check_format(scale, digits, over)
    values = _as_scores(values, "values")
    mean, sd = _mean_sd(values)
    return f"{mean * scale:.{digits}f} ± {sd * scale:.{digits}f} (sd, {len(values)} {over})"


def accuracy_standard_error(accuracy: float, n: int) -> float:
    """Return the binomial standard error sqrt(a (1 - a) / n) of an accuracy measured on n test examples.

    It is the spread of the test-set accuracy over redraws of the n examples, not over seeds. An error rate may be
    passed the same way: the formula is symmetric in a and 1 - a, so the standard error is the same.
    Chapters: overfitting, ensemble, paper_mnist, paper_rate, paper_data_size, tutorials_offline, mc_dropout
    """
    if isinstance(accuracy, bool) or not isinstance(accuracy, Real):
        raise TypeError(f"accuracy must be a number in [0, 1], got {type(accuracy).__name__}: {accuracy!r}")
    accuracy = float(accuracy)
    if not 0.0 <= accuracy <= 1.0:  # also false for NaN
        raise ValueError(f"accuracy must be a number in [0, 1] (a fraction, not a percentage), got {accuracy}")
    n = check_count(n, "n")
    return math.sqrt(accuracy * (1.0 - accuracy) / n)


# --- one test set: the exact McNemar test ----------------------------------------------------------------------------


@dataclass(frozen=True)
class McNemar:
    """The exact McNemar test of two models scored on the same test examples.

    Only the discordant examples count: `only_a` (A right, B wrong) and `only_b` (B right, A wrong) out of `n`.
    `p_value` is the exact two-sided binomial test of only_a out of only_a + only_b at 1/2, 1.0 when there is no
    discordant example. Build it with `mcnemar`; `resolved` (p_value < 1 - level) is the book's decision rule.
    Chapters: overfitting, ensemble, paper_mnist, paper_rate, paper_data_size, tutorials_offline, mc_dropout
    """

    only_a: int
    only_b: int
    n: int
    p_value: float
    level: float

    @property
    def resolved(self) -> bool:
        """Whether p_value < 1 - level: the one decision rule."""
        return self.p_value < 1.0 - self.level

    def verdict(self) -> str:
        """'resolved' when p_value < 1 - level, else 'not resolved'."""
        return "resolved" if self.resolved else "not resolved"

    def describe(self) -> str:
        """The counts, the p-value and the verdict as text, e.g. 'A right where B wrong on 12 of 500, ... at 95 %'."""
        return (f"A right where B wrong on {self.only_a} of {self.n}, the reverse on {self.only_b}; "
                f"exact McNemar {_p_text(self.p_value)}: {self.verdict()} at {_percent(self.level)}")


def mcnemar(correct_a: ArrayLike, correct_b: ArrayLike, *, level: float = 0.95) -> McNemar:
    """Compare two models on ONE test set with the exact McNemar test of their per-example correctness.

    `correct_a` and `correct_b` say, for each test example in the same order, whether model A (resp. B) got it
    right: booleans or 0/1 integers, e.g. `predictions == labels`. The p-value is that of
    `scipy.stats.binomtest(only_a, only_a + only_b, 0.5)`, 1.0 when the models disagree nowhere.
    Chapters: overfitting, ensemble, paper_mnist, paper_rate, paper_data_size, tutorials_offline, mc_dropout
    """
    level = _check_level(level)
    correct_a, correct_b = _as_correct(correct_a, "correct_a"), _as_correct(correct_b, "correct_b")
    if len(correct_a) != len(correct_b):
        raise ValueError(f"different lengths: correct_a has {len(correct_a)} examples, correct_b has "
                         f"{len(correct_b)}; score both models on the same test set, in the same order")
    if len(correct_a) == 0:
        raise ValueError("correct_a and correct_b are empty: McNemar's test needs at least one test example")
    only_a = int(np.count_nonzero(correct_a & ~correct_b))
    only_b = int(np.count_nonzero(~correct_a & correct_b))
    discordant = only_a + only_b
    p_value = 1.0 if discordant == 0 else float(stats.binomtest(only_a, discordant, 0.5).pvalue)
    return McNemar(only_a=only_a, only_b=only_b, n=len(correct_a), p_value=min(p_value, 1.0), level=level)
