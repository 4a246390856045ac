"""Early stopping on stored curves, and the variance shift through a linear layer, for the chapter on choosing the rate.

`curves` reads one arm's checkpoint readings from the stored early/late sweep (`rate_late`) as a seed x epoch table;
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
from utils.checks import check_count, check_rate, check_seed
from utils.stats import PairedDifference


def curves(table: pd.DataFrame, prefix: str, **settings: Any) -> pd.DataFrame:
    """The `prefix`_<epoch> readings of the runs that match `settings`: one row per seed, one column per epoch.

    Chapter: choosing_rate
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame of stored runs, got {type(table).__name__}")
    columns = {int(c[len(prefix) + 1:]): c for c in table.columns
               if c.startswith(f"{prefix}_") and c[len(prefix) + 1:].isdigit()}
    if not columns:
        raise ValueError(f"table has no columns {prefix}_<epoch>; it has {list(table.columns)}")
    mask = np.ones(len(table), dtype=bool)
    for name, value in settings.items():
        if name not in table.columns:
            raise ValueError(f"table lacks the column {name!r}")
        mask &= (table[name] == value).to_numpy()
    rows = table[mask]
    if rows.empty:
        raise ValueError(f"no stored run matches {settings}")
    if rows["seed"].duplicated().any():
        raise ValueError(f"the settings {settings} match several runs per seed: name every setting that varies")
    epochs = sorted(columns)
    out = rows.set_index("seed").sort_index()[[columns[e] for e in epochs]]
    out.columns = epochs
    return out.astype(float)


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
