"""Early stopping on stored curves, and the variance shift through a linear layer, for the chapter on choosing the rate.

`stop_on_validation` finds, seed by seed, the checkpoint that early stopping on validation error would keep and the
test error there. `summed_variance_ratio` measures how much of dropout's variance reaches a linear layer's outputs,
with the inputs as they are and with their correlations removed; `span` writes an interval with true minus signs.
Nothing here trains, and no sweep imports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from utils.chapters.choosing_rate import bare_interval
from utils.chapters.choosing_rate_tables import curves
from utils.checks import check_count, check_rate, check_seed
from utils.stats import PairedDifference


def stop_on_validation(table: pd.DataFrame, **settings: Any) -> pd.DataFrame:
    """Per seed: the checkpoint with the lowest validation error (ties: the earlier) and the test error there.

    Also the lowest test reading in hindsight and the last test reading. Columns `stop_epoch`, `stopped` (test error
    at the stop), `best_epoch`, `best` (lowest test error) and `final` (test error at the end), indexed by seed.
    Chapter: choosing_rate
    """
    val, test = curves(table, "val_error", **settings), curves(table, "test_error", **settings)
    if list(val.columns) != list(test.columns) or list(val.index) != list(test.index):
        raise ValueError("the validation and test readings must share their epochs and seeds")
    epochs = np.asarray(val.columns)
    stop = val.to_numpy().argmin(axis=1)
    best = test.to_numpy().argmin(axis=1)
    rows = np.arange(len(test))
    return pd.DataFrame({"stop_epoch": epochs[stop], "stopped": test.to_numpy()[rows, stop],
                         "best_epoch": epochs[best], "best": test.to_numpy()[rows, best],
                         "final": test.to_numpy()[:, -1]}, index=test.index)


def summed_variance_ratio(h: np.ndarray, w: np.ndarray, rate: float, *, samples: int = 20,
                          seed: int = 0, shuffle: bool = False) -> float:
    """Mean over the columns of `h @ w` of the variance with inverted dropout on `h` over the variance without it.

    With `shuffle`, each column of `h` is first permuted on its own, which keeps every input's distribution and
    removes the correlations between inputs (the control for which the ratio is at least 1 / (1 - rate)).
    Chapter: choosing_rate
    """
    h, w = np.asarray(h, dtype=np.float64), np.asarray(w, dtype=np.float64)
    if h.ndim != 2 or w.ndim != 2 or h.shape[1] != w.shape[0] or h.shape[0] < 2:
        raise ValueError(f"h must be examples x inputs and w inputs x outputs, got {h.shape} and {w.shape}")
    rate, samples = check_rate(rate), check_count(samples, "samples")
    rng = np.random.default_rng(check_seed(seed))
    if shuffle:
        h = np.stack([rng.permutation(column) for column in h.T], axis=1)
    keep = 1.0 - rate
    test_var = (h @ w).var(axis=0)
    if np.any(test_var <= 0):
        raise ValueError("every output column must vary across the rows of h")
    train = np.concatenate([(h * (rng.random(h.shape) < keep) / keep) @ w for _ in range(samples)])
    return float((train.var(axis=0) / test_var).mean())


def span(result: PairedDifference, *, scale: float = 100.0, unit: str = "points", digits: int = 2) -> str:
    """`bare_interval` with true minus signs (U+2212), for prose: '−1.33 to −0.27 points'.

    Chapter: choosing_rate
    """
    return bare_interval(result, scale=scale, unit=unit, digits=digits).replace("-", "\u2212")
