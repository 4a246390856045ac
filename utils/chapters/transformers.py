"""Dropout in Transformers: where a block applies it, how to find every application, and the stored sweep's figures.

- `dropout_calls` runs a model once and lists each dropout it applies, with the module that applied it, the call
  (`F.dropout`, the attention functions), the rate and whether it dropped anything. It watches the function calls
  themselves, so it also finds the dropout inside `nn.MultiheadAttention` and in hand-written attention that calls
  `F.scaled_dot_product_attention`, which no search for dropout layers finds.
- `depth_rates` is stochastic depth's linear schedule of drop rates with depth (Huang et al., 2016).
- `site_differences` and `seed_costs` pair the stored sweeps' runs by seed; `results_table`, `site_table`,
  `summary_table`, `interval_words`, `interval_points` and `narrowing_text` put them into tables and words;
  `plot_site_differences` and `plot_block_diagram` draw the figures.

The model, its dropout sites and stochastic depth live in `utils.chapters.transformers_sweeps`, with the run behind
the stored sweeps (`transformer_sites`,
`transformer_overfit`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from torch import nn
from torch.overrides import TorchFunctionMode

from utils.checks import check_count, check_rate
from utils.plotting import PALETTE
from utils.stats import PairedDifference, interval_text, paired_difference

# The functions that apply dropout, by name, with the argument that holds the rate. Inside nn.MultiheadAttention the
# dropout is an argument of F.multi_head_attention_forward, which zeroes it when its `training` argument is False.
_RATE_ARGUMENT: dict[str, str] = {
    "dropout": "p", "dropout1d": "p", "dropout2d": "p", "dropout3d": "p", "alpha_dropout": "p",
    "feature_alpha_dropout": "p", "multi_head_attention_forward": "dropout_p", "scaled_dot_product_attention":
        "dropout_p",
}
_SDPA_RATE_POSITION = 4  # scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, ...)


class _DropoutRecorder(TorchFunctionMode):
    """Records every call of a dropout function while active, with the module whose forward was running."""

    def __init__(self, stack: list[str]) -> None:
        super().__init__()
        self.stack, self.calls = stack, []

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _RATE_ARGUMENT:
            rate, training = _rate_and_mode(func, name, args, kwargs)
            self.calls.append({"module": self.stack[-1], "call": f"F.{name}", "rate": rate,
                               "drops": training and rate > 0})
        return func(*args, **kwargs)


def _rate_and_mode(func: Callable, name: str, args: tuple, kwargs: dict) -> tuple[float, bool]:
    """The rate a dropout function was called with, and whether its `training` argument let it drop."""
    if name == "scaled_dot_product_attention":  # a built-in: no signature to bind, and no training argument
        rate = kwargs.get("dropout_p", args[_SDPA_RATE_POSITION] if len(args) > _SDPA_RATE_POSITION else 0.0)
        return float(rate), True
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    return float(bound.arguments[_RATE_ARGUMENT[name]]), bool(bound.arguments["training"])


def _enter(stack: list[str], name: str, *_: Any) -> None:
    """A forward pre-hook: the module `name` starts its forward (returning None keeps its inputs)."""
    stack.append(name)


def _leave(stack: list[str], *_: Any) -> None:
    """A forward hook: the innermost running module has finished (returning None keeps its output)."""
    stack.pop()


def dropout_calls(model: nn.Module, *inputs: Any, **kwargs: Any) -> pd.DataFrame:
    """Run `model(*inputs, **kwargs)` once and list the dropout it applied: module, call, rate, and whether it dropped.

    One row per call of a dropout function (`F.dropout` and its variants, `F.multi_head_attention_forward`,
    `F.scaled_dot_product_attention`), in the order of the calls; "module" is the name of the submodule whose
    forward made the call ("(model)" for the model's own). "drops" is False for a call that cannot drop: rate 0, or
    its `training` argument False. While it watches, PyTorch's fused inference paths are off, so an
    `nn.TransformerEncoderLayer` in eval mode shows its ordinary path (whose dropout does not drop in eval mode).
    Chapter: transformers
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    stack = ["(model)"]
    handles = []
    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_pre_hook(partial(_enter, stack, name)))
            handles.append(module.register_forward_hook(partial(_leave, stack), always_call=True))
    recorder = _DropoutRecorder(stack)
    try:
        with recorder:
            model(*inputs, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return pd.DataFrame(recorder.calls, columns=["module", "call", "rate", "drops"])


def depth_rates(n_blocks: int, last_rate: float = 0.5) -> list[float]:
    """Stochastic depth's linear rule: block l of L (from 1) is dropped with probability (l / L) * last_rate.

    Huang et al. (2016) use last_rate = 0.5: the first block is almost always kept, the last one half the time. (timm's
    models space theirs as linspace(0, rate, depth) instead, which starts at 0 for the first block.)
    Chapter: transformers
    """
    n_blocks = check_count(n_blocks, "n_blocks")
    last_rate = check_rate(last_rate)
    return [last_rate * block / n_blocks for block in range(1, n_blocks + 1)]


# How the chapter names each set of dropout sites that the stored sweeps run.
LABELS: dict[str, str] = {"none": "none", "embedding": "embedding", "attention": "attention weights",
                          "residual": "sub-layer outputs", "embedding+attention+residual": "all three"}
_COLUMN_NAMES: dict[str, str] = {"test_error": "test error", "train_error": "training error",
                                 "gap": "gap (test − train)"}
MINUS = "−"  # the minus sign printed intervals use on the page
_METRICS: dict[str, str] = {"test_error": "test error", "train_error": "training error",
                            "gap": "test − training"}


def _scores(table: pd.DataFrame, n_train: int, metric: str) -> pd.DataFrame:
    """The runs at `n_train` signals as a (seed x sites) table of `metric`; "gap" is test minus training error."""
    if metric not in _METRICS and metric not in getattr(table, "columns", ()):
        raise ValueError(f"metric must be a column of the table or one of {sorted(_METRICS)}, got {metric!r}")
    source = "test_error" if metric == "gap" else metric
    needed = {"n_train", "sites", "seed", source} | ({"train_error"} if metric == "gap" else set())
    if not isinstance(table, pd.DataFrame) or not needed <= set(table.columns):
        raise ValueError(f"table must be the stored sweep's table, with columns {sorted(needed)}")
    runs = table[table["n_train"] == n_train]
    if runs.empty:
        raise ValueError(f"no runs with n_train = {n_train}; the table has {sorted(table['n_train'].unique())}")
    if metric == "gap":
        runs = runs.assign(gap=runs["test_error"] - runs["train_error"])
    return runs.pivot(index="seed", columns="sites", values=metric)[list(runs["sites"].unique())]


def site_differences(table: pd.DataFrame, n_train: int, *, metric: str = "test_error",
                     baseline: str = "none", level: float = 0.95) -> dict[str, PairedDifference]:
    """For each set of sites at `n_train` signals: the paired difference of `metric` from the `baseline` runs.

    Rows are paired by seed; a positive difference means more error than the baseline. `metric` is a column of the
    table or "gap" (test minus training error); `level` is the intervals' level (e.g. 1 - 0.05 / 4 for a Bonferroni
    allowance for four comparisons).
    Chapter: transformers
    """
    scores = _scores(table, n_train, metric)
    if baseline not in scores:
        raise ValueError(f"no {baseline!r} runs at n_train = {n_train}")
    return {sites: paired_difference(scores[sites], scores[baseline], level=level)
            for sites in scores if sites != baseline}


def seed_costs(table: pd.DataFrame, n_train: int, sites: str, *, metric: str = "test_error") -> pd.Series:
    """Seed by seed, the `metric` of the `sites` runs minus that of the runs without dropout, at `n_train` signals.

    Chapter: transformers
    """
    scores = _scores(table, n_train, metric)
    if sites not in scores or "none" not in scores:
        raise ValueError(f"the table needs {sites!r} and 'none' runs at n_train = {n_train}")
    return scores[sites] - scores["none"]


def results_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean training and test error (%) over seeds, one row per data size and set of sites, in the table's order.

    Chapter: transformers
    """
    needed = {"n_train", "sites", "train_error", "test_error"}
    if not isinstance(table, pd.DataFrame) or not needed <= set(table.columns):
        raise ValueError(f"table must be the stored sweep's table, with columns {sorted(needed)}")
    means = 100 * table.groupby(["n_train", "sites"], sort=False)[["train_error", "test_error"]].mean()
    means.index = [f"{n:,} signals, {LABELS.get(sites, sites)}" for n, sites in means.index]
    means.columns = ["train error %", "test error %"]
    return means.round(1)


def interval_words(result: PairedDifference) -> str:
    """`interval_text` in percentage points with one decimal and a real minus sign (U+2212) for the page.

    An end that rounds to 0.0 keeps its sign, as everywhere in the book: "−0.0" lies just below 0.
    Chapter: transformers
    """
    if not isinstance(result, PairedDifference):
        raise TypeError(f"result must be a PairedDifference, got {type(result).__name__}")
    return interval_text(result, digits=1).replace("-", MINUS)


def interval_points(result: PairedDifference) -> str:
    """The interval's ends alone, in percentage points with one decimal and a real minus: '−5.4 to −0.7 points'.

    For prose that states the level and the seeds once; the verdict is worded, and asserted, by the page.
    Chapter: transformers
    """
    if not isinstance(result, PairedDifference):
        raise TypeError(f"result must be a PairedDifference, got {type(result).__name__}")
    return f"{100 * result.low + 0.0:+.1f} to {100 * result.high + 0.0:+.1f} points".replace("-", MINUS)


def _short_interval(result: PairedDifference) -> str:
    """The interval's ends for a table cell, marked '*' when it is resolved."""
    text = interval_points(result).removesuffix(" points")
    return f"{text} *" if result.resolved else f"{text}  "


def site_table(groups: Sequence[tuple[str, pd.DataFrame, int]], *,
               metrics: Sequence[str] = ("test_error", "train_error", "gap"),
               allowance_level: float | None = None) -> pd.DataFrame:
    """Every set of sites against no dropout, as intervals in points: one row per (group, sites), one column per metric.

    Each group is (title, table, n_train), e.g. ("1,000", runs, 1000); rows are labelled "title, sites". A cell is the
    95 % interval of the paired difference, ends in percentage points, marked '*' when it is resolved. With
    `allowance_level` (e.g. 1 - 0.05 / 4, a Bonferroni allowance for four comparisons), each metric gets a second
    column with the intervals at that level, marked the same way.
    Chapter: transformers
    """
    if not groups or not metrics:
        raise ValueError("site_table needs at least one group and one metric")
    levels = [0.95] if allowance_level is None else [0.95, allowance_level]
    columns = {}
    for metric in metrics:
        for level in levels:
            cells = {}
            for title, table, n_train in groups:
                for sites, result in site_differences(table, n_train, metric=metric, level=level).items():
                    cells[f"{title}, {LABELS.get(sites, sites)}"] = _short_interval(result)
            name = _COLUMN_NAMES.get(metric, metric)
            columns[name if allowance_level is None else f"{name}, {100 * level:g} %"] = cells
    return pd.DataFrame(columns)


def summary_table(groups: Sequence[tuple[pd.DataFrame, int]], *, allowance_level: float) -> pd.DataFrame:
    """One table for the page: mean errors per set of sites, and each test-error interval against no dropout.

    Each group is (table, n_train); rows are "n signals, sites". The first two columns are the means over seeds (%),
    the last two the test-error intervals of `site_table` at 95 % and at `allowance_level`, blank for no dropout.
    Chapter: transformers
    """
    if not groups:
        raise ValueError("summary_table needs at least one (table, n_train) group")
    means = pd.concat([results_table(table[table["n_train"] == n_train]) for table, n_train in groups])
    intervals = site_table([(f"{n_train:,} signals", table, n_train) for table, n_train in groups],
                           metrics=("test_error",), allowance_level=allowance_level)
    joined = means.join(intervals).fillna("")
    joined.columns = pd.MultiIndex.from_tuples(
        [("mean over seeds, %", "train error"), ("mean over seeds, %", "test error")]
        + [("dropout \u2212 none, points", name) for name in intervals.columns])
    return joined


def narrowing_text(result: PairedDifference) -> str:
    """A difference that should be negative (a gap narrowed) as how much it shrank, e.g. '2.1 to 7.8 points'.

    Chapter: transformers
    """
    if not isinstance(result, PairedDifference):
        raise TypeError(f"result must be a PairedDifference, got {type(result).__name__}")
    if not result.high < 0:
        raise ValueError(f"the difference is not resolved below 0 ({interval_text(result)}): nothing narrowed")
    return f"{-100 * result.high:.1f} to {-100 * result.low:.1f} points"


def plot_site_differences(table: pd.DataFrame, groups: Sequence[tuple[str, int]], *,
                          metrics: Sequence[str] = ("test_error", "train_error", "gap"),
                          allowance_level: float | None = None) -> Figure:
    """Paired differences from no dropout, one panel per metric, one row per set of sites, one colour per group.

    Each group is (title, n_train), e.g. ("1,000 signals", 1000); rows are labelled with `LABELS` and the title.
    Each row shows the mean and its 95 % interval (thick, capped); with `allowance_level` (e.g. 1 - 0.05 / 4) a thin
    whisker behind it shows the wider interval at that level.
    Chapter: transformers
    """
    if not groups or not metrics:
        raise ValueError("plot_site_differences needs at least one group and one metric")
    if allowance_level is not None and not 0.95 < allowance_level < 1:
        raise ValueError(f"allowance_level must lie between 0.95 and 1, got {allowance_level!r}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.4 + 2.2 * len(metrics), 3.0), sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        rows: list[str] = []
        for index, (title, n_train) in enumerate(groups):
            results = site_differences(table, n_train, metric=metric)
            wider = (site_differences(table, n_train, metric=metric, level=allowance_level)
                     if allowance_level is not None else {})
            for sites, result in results.items():
                rows.append(f"{LABELS.get(sites, sites)}, {title}")
                if sites in wider:
                    ax.hlines(len(rows) - 1, 100 * wider[sites].low, 100 * wider[sites].high,
                              color=PALETTE[index], linewidth=1.0)
                ax.errorbar(100 * result.mean, len(rows) - 1,
                            xerr=[[100 * (result.mean - result.low)], [100 * (result.high - result.mean)]],
                            fmt="o", color=PALETTE[index], capsize=4, elinewidth=3)
        ax.axvline(0.0, color="0.25", linewidth=1.3, linestyle="--", zorder=0)
        ax.set_title(_METRICS.get(metric, metric), fontsize=12)
        ax.set_xlabel("dropout \u2212 no dropout\n(points)", fontsize=11)
        ax.tick_params(labelsize=11)
    axes[0][0].set_yticks(range(len(rows)), rows)
    axes[0][0].invert_yaxis()
    fig.set_figheight(1.9 + 0.5 * len(rows))
    return fig


def _box(ax: plt.Axes, x: float, y: float, text: str, *, dropout: bool = False, width: float = 4.0) -> None:
    """One box of the block diagram, centred at (x, y); dropout boxes in the book's orange."""
    colour = PALETTE[1] if dropout else "0.92"
    ax.add_patch(FancyBboxPatch((x - width / 2, y - 0.3), width, 0.6, boxstyle="round,pad=0.05",
                                facecolor=colour, edgecolor="0.3", linewidth=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=9, fontweight="bold" if dropout else "normal")


def _arrow(ax: plt.Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    """An arrow of the block diagram."""
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "0.3", "linewidth": 1})


def _bracket(ax: plt.Axes, low: float, high: float, text: str) -> None:
    """A bracket right of the boxes from `low` to `high`, naming the sub-layer it spans."""
    ax.plot([2.25, 2.45, 2.45, 2.25], [low - 0.3, low - 0.3, high + 0.3, high + 0.3], color="0.3", linewidth=1)
    ax.text(2.65, (low + high) / 2, text, ha="left", va="center", fontsize=9, color="0.3")


def plot_block_diagram() -> Figure:
    """Where a Transformer encoder block drops, in the original post-norm arrangement (dropout boxes in orange).

    Chapter: transformers
    """
    fig, ax = plt.subplots(figsize=(7.5, 9.0))
    main = [
        (0.0, "token embedding + position encoding", False),
        (1.0, "dropout (embedding)", True),
        (2.2, r"attention weights: softmax$(QK^{\top}/\sqrt{d_k})$", False),
        (3.2, "dropout (attention weights; not in \u00a75.4)", True),
        (4.2, r"weights $\cdot\, V$, then output projection", False),
        (5.2, "dropout (sub-layer output)", True),
        (6.2, "add residual, then layer norm", False),
        (7.4, "linear d \u2192 4d, ReLU", False),
        (8.4, "dropout (activation; not in \u00a75.4)", True),
        (9.4, "linear 4d \u2192 d", False),
        (10.4, "dropout (sub-layer output)", True),
        (11.4, "add residual, then layer norm", False),
    ]
    for y, text, dropout in main:
        _box(ax, 0.0, y, text, dropout=dropout)
    for (y0, _, _), (y1, _, _) in zip(main, main[1:], strict=False):
        _arrow(ax, (0.0, y0 + 0.3), (0.0, y1 - 0.3))
    _arrow(ax, (0.0, 11.7), (0.0, 12.3))
    for start, end in ((1.6, 6.2), (6.8, 11.4)):  # the residual path: around the sub-layer, into the add
        ax.plot([0.0, -2.6, -2.6], [start, start, end], color=PALETTE[0], linewidth=1.2)
        ax.annotate("", xy=(-2.05, end), xytext=(-2.6, end),
                    arrowprops={"arrowstyle": "->", "color": PALETTE[0], "linewidth": 1.2})
        ax.text(-2.85, (start + end) / 2, "residual", rotation=90, ha="center", va="center", fontsize=9,
                color=PALETTE[0])
    _bracket(ax, 2.2, 5.2, "attention\nsub-layer")
    _bracket(ax, 7.4, 10.4, "feed-forward\nsub-layer")
    ax.text(0.0, 12.5, "to the next block", ha="center", va="bottom", fontsize=9, color="0.3")
    ax.set_xlim(-3.1, 4.2)
    ax.set_ylim(-0.6, 13.0)
    ax.axis("off")
    return fig
