"""Dropout in recurrent networks: what masks do to a stored state, what the frameworks do, and the chapter's figures.

The LSTM with explicit masks and its training runs live in `utils.chapters.recurrent_sweeps` (the stored sweep's
code, kept apart so that editing this module leaves the stored table valid).
- `memory_survival` measures how much of a stored state survives T steps of per-step or per-sequence masks;
- `torch_between_layers` and `keras_mask_probe` expose what PyTorch's `nn.LSTM(dropout=p)` and Keras's
  `LSTM(dropout=..., recurrent_dropout=...)` do to their masks;
- `results_table` sets out one stored run: mean errors per arm, each arm's paired interval against a baseline and
  its verdict (general enough for any chapter that compares arms over paired seeds), and `evaluation_table` sets
  the test error of one pass without masks beside the test error averaged over masked passes;
  `plot_paired_forest` draws paired intervals against a baseline, one marker per evaluation.

Rates are drop rates p; kept units are divided by q = 1 - p in training (inverted dropout), nothing at test time.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from utils.chapters.recurrent_sweeps import LABELS, MODES, SCHEMES
from utils.checks import check_count, check_rate, check_seed
from utils.plotting import PALETTE
from utils.stats import PairedDifference, paired_difference

# The sweep's scheme labels and the fifth arm's (utils.chapters.recurrent_arms), kept here so that relabelling
# leaves the stored tables valid.
ARM_LABELS: dict[str, str] = {**LABELS, "recurrent_sequence": "Zaremba + recurrent per sequence"}

# The plain RNN sweep's recurrent-mask modes (utils.chapters.recurrent_rnn), as the page names them.
RNN_LABELS: dict[str, str] = {"none": "no mask", "step": "fresh mask at each step", "sequence": "one mask per sequence"}


MINUS = "\u2212"  # a real minus sign for the page


def interval_ends(result: PairedDifference, unit: str = "", *, digits: int = 1) -> str:
    """The ends of a paired interval in percentage points, e.g. '−2.0 to −0.5' (with `unit`: '… points').

    `digits` decimals (one by default); an end that rounds to zero is written unsigned, the others carry their
    sign, with a real minus.
    Chapter: recurrent
    """
    if not isinstance(result, PairedDifference):
        raise TypeError(f"result must be a PairedDifference, got {type(result).__name__}")
    if not isinstance(unit, str):
        raise TypeError(f"unit must be a string, got {unit!r}")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= 4:
        raise ValueError(f"digits must be an integer from 0 to 4, got {digits!r}")
    zero = f"{0:.{digits}f}"
    ends = [f"{100 * end + 0.0:+.{digits}f}" for end in (result.low, result.high)]
    ends = [zero if end[1:] == zero else end.replace("-", MINUS) for end in ends]
    return f"{ends[0]} to {ends[1]}" + (f" {unit}" if unit else "")


def power_text(value: float, digits: int = 1) -> str:
    """A positive number in powers of ten for the page, e.g. 3.2e-13 as '3.2 × 10⁻¹³'.

    Chapter: recurrent
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"value must be a positive finite number, got {value!r}")
    mantissa, exponent = f"{value:.{check_count(digits, 'digits', minimum=0)}e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPTS)}"


_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def error_verdict(result: PairedDifference) -> str:
    """The verdict on a paired difference of error rates: 'resolved better', 'resolved worse' or 'not resolved'.

    Chapter: recurrent
    """
    if not isinstance(result, PairedDifference):
        raise TypeError(f"result must be a PairedDifference, got {type(result).__name__}")
    if not result.resolved:
        return "not resolved"
    return "resolved better" if result.high < 0 else "resolved worse"


def results_table(train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], labels: Mapping[str, str], *,
                  baseline: str = "none", test_mc: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per arm: mean training and test error (%), the test error's 95 % paired interval against `baseline`.

    `train` and `test` map each arm to its error rates, one per seed in the same seed order for every arm. The last
    two columns, the interval (percentage points, arm minus baseline) and its `error_verdict`, are blank in the
    baseline's row. With `test_mc` (the test error averaged over masked passes, the same arms and seeds), its mean
    stands in a column after the test error's.
    Chapter: recurrent
    """
    _check_arms(train, test, labels, baseline, "train and test")
    if test_mc is not None:
        _check_arms(test, test_mc, labels, baseline, "test and test_mc")
    against = f"test {MINUS} {labels[baseline]}, points"
    rows = {}
    for arm in test:
        row = {"training error, %": f"{100 * np.mean(train[arm]):.1f}",
               "test error, %": f"{100 * np.mean(test[arm]):.1f}"}
        if test_mc is not None:
            row["test error over masks, %"] = f"{100 * np.mean(test_mc[arm]):.1f}"
        row[against], row["verdict"] = "", ""
        if arm != baseline:
            diff = paired_difference(test[arm], test[baseline])
            row[against], row["verdict"] = interval_ends(diff), error_verdict(diff)
        rows[labels[arm]] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns.name = "arm"  # shown in the corner, in the header's one row
    return table


def evaluation_table(test: Mapping[str, np.ndarray], test_mc: Mapping[str, np.ndarray], labels: Mapping[str, str],
                     *, baseline: str = "none") -> pd.DataFrame:
    """One row per masked arm: one pass minus the average over masks, and that average against `baseline`'s.

    `test` holds each arm's test error from one pass without masks, `test_mc` from class probabilities averaged
    over masked passes, one per seed in the same seed order for every arm. Each pair of columns is a 95 % paired
    interval (percentage points) and its verdict: first one pass minus the average over masks of the same arm
    ('one pass errs more' or '… less' where resolved), then the arm's average over masks minus `baseline`'s (its
    `error_verdict`), which has no masks and so no row.
    Chapter: recurrent
    """
    _check_arms(test, test_mc, labels, baseline, "test and test_mc")
    against = f"over masks {MINUS} {labels[baseline]}, points"
    rows = {}
    for arm in test:
        if arm == baseline:
            continue
        one_pass = paired_difference(test[arm], test_mc[arm])
        averaged = paired_difference(test_mc[arm], test_mc[baseline])
        rows[labels[arm]] = {f"one pass {MINUS} over masks, points": interval_ends(one_pass),
                             "verdict on one pass": _ONE_PASS.get(error_verdict(one_pass), "not resolved"),
                             against: interval_ends(averaged), "verdict over masks": error_verdict(averaged)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns.name = "arm"
    return table


_ONE_PASS = {"resolved worse": "one pass errs more", "resolved better": "one pass errs less"}


def _check_arms(first: Mapping[str, np.ndarray], second: Mapping[str, np.ndarray], labels: Mapping[str, str],
                baseline: str, names: str) -> None:
    """A clear error unless both map the same arms, in order, to one error per seed each, with labels and baseline."""
    if baseline not in second:
        raise KeyError(f"no baseline {baseline!r} among the arms {list(second)}")
    if list(first) != list(second) or len({len(v) for v in (*first.values(), *second.values())}) != 1:
        raise ValueError(f"{names} must map the same arms, in the same order, to one error per seed each")
    missing = [arm for arm in second if arm not in labels]
    if missing:
        raise KeyError(f"no label for the arms {missing}")


def memory_survival(steps: int, drop_rate: float, mode: str, *, n_units: int = 10_000, seed: int = 0) -> np.ndarray:
    """The share of units whose stored value is still intact after each of 1..`steps` masked steps.

    The memory is the best a recurrent connection can do: unit j copies its own value forward, h_t = a m_t h_{t-1},
    where m_t is the dropout mask (0 or 1/q). Under one mask per sequence, a = q undoes the scaling and a kept unit
    holds its value exactly; under a fresh mask per step, no fixed a does, and a unit survives only the steps that
    kept it every time. A unit counts as intact when its value equals the stored one to float precision.
    Chapter: recurrent
    """
    steps, n_units, drop_rate = check_count(steps, "steps"), check_count(n_units, "n_units"), check_rate(drop_rate)
    if mode not in MODES:
        raise ValueError(f"mode must be 'step' (a fresh mask each step) or 'sequence' (one mask), got {mode!r}")
    rng = np.random.default_rng(check_seed(seed))
    keep = 1.0 - drop_rate
    stored = rng.uniform(0.5, 1.5, n_units)
    masks = (rng.random((steps if mode == "step" else 1, n_units)) < keep) / keep
    h, survived = stored.copy(), np.empty(steps)
    for t in range(steps):
        h = keep * masks[min(t, len(masks) - 1)] * h  # a = q: exact for a per-sequence mask
        survived[t] = np.isclose(h, stored, rtol=1e-9).mean()
    return survived


@torch.no_grad()
def torch_between_layers(lstm: nn.LSTM, x: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Run a 2-layer `nn.LSTM` in training mode, and again by hand: layer 1, `F.dropout`, layer 2, no dropout.

    Both runs start from the same torch seed, so if `nn.LSTM` masks the first layer's outputs with the dropout
    PyTorch uses everywhere (a fresh mask per step and unit) and leaves the last layer's alone, the two agree.
    Returns the library's output, the hand-made one, and the mask that the hand-made run drew.
    Chapter: recurrent
    """
    if not isinstance(lstm, nn.LSTM) or lstm.num_layers != 2 or lstm.bidirectional or lstm.proj_size:
        raise ValueError("lstm must be a two-layer, one-directional nn.LSTM without projections")
    if x.ndim != 3 or x.shape[-1] != lstm.input_size:
        raise ValueError(f"x must be (steps, batch, {lstm.input_size}) (or batch first), got {tuple(x.shape)}")
    layers = []
    for k in range(2):
        layer = nn.LSTM(lstm.input_size if k == 0 else lstm.hidden_size, lstm.hidden_size,
                        batch_first=lstm.batch_first)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(layer, f"{name}_l0").copy_(getattr(lstm, f"{name}_l{k}"))
        layers.append(layer)
    was_training = lstm.training
    lstm.train()
    torch.manual_seed(seed)
    library = lstm(x)[0]
    lstm.train(was_training)
    torch.manual_seed(seed)
    first = layers[0](x)[0]
    mask = nn.functional.dropout(torch.ones_like(first), lstm.dropout, training=True)
    by_hand = layers[1](first * mask)[0]
    return {"library": library, "by_hand": by_hand, "mask": mask}


def keras_mask_probe(drop_rate: float, *, recurrent: bool, steps: int = 6, units: int = 8, batch: int = 4,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """Expose the masks of a Keras LSTM, in training mode, through weights that copy the masked values out.

    Gates are pinned open (input and output gates at 1, forget gate at 0), so each step's output is
    tanh(tanh(z)) of the candidate's masked input z, unit by unit: the input x_t (recurrent=False, `dropout` set)
    or twice the previous output (recurrent=True, `recurrent_dropout` set, zero inputs and a non-zero initial
    state). Returns `kept` (batch, steps, units): where the mask kept the value, and `scale`: the masked value
    divided by the unmasked one, where kept.
    Chapter: recurrent
    """
    import keras

    drop_rate, steps, units = check_rate(drop_rate), check_count(steps, "steps"), check_count(units, "units")
    batch, seed = check_count(batch, "batch"), check_seed(seed)
    if drop_rate == 0.0:
        raise ValueError("drop_rate must be above 0 for the probe to find a mask")
    if not isinstance(recurrent, bool):
        raise TypeError(f"recurrent must be True or False, got {recurrent!r}")
    rates = {"recurrent_dropout" if recurrent else "dropout": drop_rate}
    layer = keras.layers.LSTM(units, return_sequences=True, seed=seed, **rates)
    rng = np.random.default_rng(seed)
    x = np.zeros((batch, steps, units), np.float32) if recurrent else rng.uniform(0.1, 0.3, (batch, steps, units))
    h0 = rng.uniform(0.1, 0.3, (batch, units)).astype(np.float32)
    state = [keras.ops.convert_to_tensor(h0), keras.ops.zeros((batch, units))]
    layer(x.astype(np.float32), initial_state=state)  # builds the weights
    gain = 2.0  # the recurrent copy's gain: tanh(tanh(2 h)) keeps a value near 0.2 away from zero
    kernel, recurrent_kernel, bias = (np.zeros(w.shape, np.float32) for w in layer.get_weights())
    block = slice(2 * units, 3 * units)  # Keras orders the gates i, f, c (candidate), o
    if recurrent:
        recurrent_kernel[:, block] = gain * np.eye(units)
    else:
        kernel[:, block] = np.eye(units)
    bias[:units], bias[units:2 * units], bias[3 * units:] = 30.0, -30.0, 30.0  # i = 1, f = 0, o = 1
    layer.set_weights([kernel, recurrent_kernel, bias])
    out = np.asarray(layer(x.astype(np.float32), initial_state=state, training=True))
    masked = np.arctanh(np.arctanh(out))  # the candidate's pre-activation z, unit by unit
    previous = np.concatenate([h0[:, None], out[:, :-1]], axis=1)
    plain = gain * previous if recurrent else x
    kept = np.abs(out) > 1e-6  # a masked value leaves at most f * c, about 1e-13
    return {"kept": kept, "scale": masked[kept] / plain[kept]}


def plot_schemes() -> Figure:
    """Three small unrolled RNNs, one per dropout scheme, with a mark on every arrow that carries a mask.

    Per-step masks are circles, one colour per step; per-sequence masks are squares, one shade per place (inputs,
    recurrent state, last state), since each place draws its own mask.
    Chapter: recurrent
    """
    titles = {"naive": "naive\nfresh masks everywhere", "zaremba": "Zaremba et al.\nno mask on $h_{t-1} \\to h_t$",
              "variational": "variational\none mask per sequence"}
    steps = 4
    arrow = {"arrowstyle": "->", "color": "0.35", "lw": 1.5}
    box = {"boxstyle": "round", "fc": "white", "ec": "0.4"}
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 4.4))
    for ax, (scheme, title) in zip(axes, titles.items(), strict=True):
        places = SCHEMES[scheme]
        for t in range(steps):
            for y, text in ((0, f"$x_{t + 1}$"), (1, f"$h_{t + 1}$")):
                ax.text(t, y, text, ha="center", va="center", fontsize=15, bbox=box)
            ax.annotate("", (t, 0.75), (t, 0.25), arrowprops=arrow)
            _mark(ax, t, 0.5, places["inputs"], t, "inputs")
            if t:
                ax.annotate("", (t - 0.26, 1), (t - 0.74, 1), arrowprops=arrow)
                _mark(ax, t - 0.6, 1, places["recurrent"], t, "recurrent")  # clear of the arrowhead
        ax.text(steps - 1, 2, "$\\hat y$", ha="center", va="center", fontsize=15, bbox=box)
        ax.annotate("", (steps - 1, 1.75), (steps - 1, 1.25), arrowprops=arrow)
        _mark(ax, steps - 1, 1.5, places["output"], steps - 1, "output")
        ax.set(xlim=(-0.5, steps - 0.5), ylim=(-0.4, 2.4))
        ax.set_title(title, fontsize=14)
        ax.axis("off")
    handles = [plt.Line2D([], [], ls="", marker="o", color=PALETTE[0], ms=11,
                          label="fresh mask at each step (colour = step)"),
               *(plt.Line2D([], [], ls="", marker="s", color=_SHADES[place], mec="black", ms=10,
                            label=f"one mask per sequence: {name}")
                 for place, name in (("inputs", "inputs"), ("recurrent", "recurrent state"),
                                     ("output", "last state")))]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=13)
    return fig


# The shade of a per-sequence mask's square, by place: each place draws its own mask.
_SHADES: dict[str, str] = {"inputs": "black", "recurrent": "0.62", "output": "white"}


def _mark(ax: plt.Axes, x: float, y: float, mode: str | None, t: int, place: str) -> None:
    """A mask mark on an arrow: a circle in step t's colour for a per-step mask, a square in its place's shade."""
    if mode == "step":
        ax.plot(x, y, "o", color=PALETTE[t % 4], ms=12, zorder=3)
    elif mode == "sequence":
        ax.plot(x, y, "s", color=_SHADES[place], mec="black", mew=1.2, ms=11, zorder=3)


def plot_survival(steps: np.ndarray, survival: Mapping[str, np.ndarray], drop_rate: float, *,
                  marked: int | None = None) -> Figure:
    """The share of intact stored values after t steps, per mask mode: measured (points) against q^t or q (lines).

    Both axes are logarithmic; a share of 0 has no point. `marked`, if given, draws a dotted line at that step.
    Chapter: recurrent
    """
    keep = 1.0 - check_rate(drop_rate)
    if set(survival) - set(MODES):
        raise ValueError(f"survival's keys must be mask modes {MODES}, got {sorted(survival)}")
    exact = {"step": keep ** steps, "sequence": np.full(len(steps), keep)}
    names = {"step": "a fresh mask each step", "sequence": "one mask per sequence"}
    formula = {"step": "$q^t$", "sequence": "$q$"}
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for k, (mode, values) in enumerate(survival.items()):
        ax.plot(steps, exact[mode], color=PALETTE[k], label=f"{names[mode]}: {formula[mode]}")
        shown = values > 0
        ax.plot(steps[shown], values[shown], "o", color=PALETTE[k], ms=4, label=f"{names[mode]}: measured")
    if marked is not None:
        ax.axvline(check_count(marked, "marked"), color="0.5", ls=":", lw=1.2)
    ax.set(xscale="log", yscale="log", xlabel="time steps $t$", ylabel="share of stored values intact",
           xlim=(1, steps[-1]), ylim=(1e-6, 2))
    ax.legend(fontsize=9, loc="lower left")
    return fig


def plot_fit_gap(train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], labels: Mapping[str, str]) -> Figure:
    """Each scheme's training and test error side by side, one point per seed, the means joined: the gap per scheme.

    Chapter: recurrent
    """
    if not train or set(train) != set(test) or len({len(v) for v in (*train.values(), *test.values())}) != 1:
        raise ValueError("train and test must map the same schemes to one error per seed, the same seeds throughout")
    fig, ax = plt.subplots(figsize=(8, 4.4))
    for k, name in enumerate(train):
        pair = [100 * np.asarray(split[name], float) for split in (train, test)]
        for shift, values, colour, label in zip((-0.15, 0.15), pair, PALETTE, ("training error", "test error")):
            ax.scatter(np.full(len(values), k + shift), values, s=14, color=colour, zorder=2,
                       label=label if k == 0 else None)
        ax.plot([k - 0.15, k + 0.15], [v.mean() for v in pair], "-_", color="black", ms=18, mew=2.5, zorder=3,
                label="means, joined: the gap" if k == 0 else None)
    ax.set_xticks(np.arange(len(train)), [textwrap.fill(labels[name], 16) for name in train])
    ax.set(ylabel="error (%)", xlim=(-0.5, len(train) - 0.5), ylim=(0, None))
    fig.legend(fontsize=9, loc="outside lower center", ncol=3)
    return fig


def plot_paired_forest(rows: Mapping[str, Mapping[str, PairedDifference]]) -> Figure:
    """Each row's paired intervals in percentage points, one marker per evaluation, around a line at zero.

    `rows` maps a row's label (an arm) to {evaluation name: its PairedDifference against the baseline}, the same
    evaluations, in the same order, in every row; each marker is the mean difference, its bar the 95 % interval.
    Chapter: recurrent
    """
    names = [tuple(row) for row in rows.values()]
    if not rows or not names[0] or len(set(names)) != 1:
        raise ValueError("rows must map each label to the same evaluations, at least one")
    if not all(isinstance(d, PairedDifference) for row in rows.values() for d in row.values()):
        raise TypeError("every interval must be a PairedDifference")
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.75 * len(rows)))
    offsets = np.linspace(-0.15, 0.15, len(names[0])) if len(names[0]) > 1 else [0.0]
    for k, row in enumerate(rows.values()):
        for j, (name, diff) in enumerate(row.items()):
            y = len(rows) - 1 - k - offsets[j]
            ax.errorbar(100 * diff.mean, y, xerr=[[100 * (diff.mean - diff.low)], [100 * (diff.high - diff.mean)]],
                        fmt="os"[j % 2], color=PALETTE[j % len(PALETTE)], capsize=3, ms=6,
                        label=name if k == 0 else None)
    ax.axvline(0, color="black", lw=1, ls="--", zorder=0)
    ax.set_yticks(np.arange(len(rows))[::-1], [textwrap.fill(label, 24) for label in rows])
    ax.set(xlabel="test error minus no dropout's (points)", ylim=(-0.6, len(rows) - 0.4))
    fig.legend(fontsize=9, loc="outside lower center", ncol=len(names[0]))
    return fig
