"""What the three paper chapters share: the scale switch, the paper's own numbers and settings, and the table of
differences between the runs a chapter shows, the paper-scale runs and the paper (Srivastava et al., 2014).

- The **scale switch**: one environment variable, SCALE_ENV. "laptop" (the default) reads the stored sweeps of
  `utils.sweeps.SWEEPS` (data/results/); "paper" reads `PAPER_SWEEPS` (data/results/paper/), which someone with a GPU
  and full MNIST made with `python -m tools.experiments --scale paper`.
- The paper's **reference numbers** and **stated settings**, as data with the table or section they come from.
- `differences`: one table per chapter, setting by setting: this page's runs, the paper-scale runs, the paper.

The runs themselves are in `utils.chapters.paper_sweeps`. Rates are drop rates, as everywhere in the book; the
paper's p is the retention probability 1 - rate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from utils.store import Sweep
from utils.sweeps import PAPER_SWEEPS, SWEEPS

SCALE_ENV = "DROPOUT_IN_DEPTH_SCALE"
SCALES: tuple[str, ...] = ("laptop", "paper")
DEFAULT_SCALE = "laptop"


def scale_name(value: str | None = None) -> str:
    """The scale to read: `value`, else the SCALE_ENV environment variable, else "laptop"; checked against SCALES.

    Chapters: paper_mnist, paper_rate, paper_data_size
    """
    if value is None:
        value = os.environ.get(SCALE_ENV, "").strip() or DEFAULT_SCALE
    if not isinstance(value, str):
        raise TypeError(f"the scale must be a str, one of {SCALES}, got {type(value).__name__}")
    name = value.strip().lower()
    if name not in SCALES:
        raise ValueError(f"unknown scale {value!r} (from {SCALE_ENV} or the argument); "
                         f"allowed: {', '.join(SCALES)} (unset means {DEFAULT_SCALE!r})")
    return name


def chapter_sweep(name: str, scale: str | None = None) -> Sweep:
    """The stored sweep `name` at the scale SCALE_ENV (or `scale`) picks: the laptop's or the paper's.

    Chapters: paper_mnist, paper_rate, paper_data_size
    """
    registry = SWEEPS if scale_name(scale) == "laptop" else PAPER_SWEEPS
    if name not in registry:
        raise ValueError(f"no sweep {name!r} at the {scale_name(scale)} scale; there are {sorted(registry)}")
    return registry[name]


@dataclass(frozen=True)
class Reference:
    """A test error the paper reports, in percent, with what it was measured on and where the paper gives it.

    Chapter: paper_mnist
    """

    model: str
    error_percent: float
    source: str


# The paper's Table 2 rows that our three methods stand beside, the architecture in the table's own words. Its
# "standard" row is a logistic net of "2 layers, 800 units" (Simard et al., 2003), which likely counts weight layers
# (one hidden layer of 800); ours is a ReLU net, the same as the dropout rows but without dropout.
PAPER_TABLE2: dict[str, Reference] = {
    "no dropout": Reference("standard neural net, logistic, 2 layers, 800 units", 1.60, "Table 2"),
    "dropout": Reference("dropout NN, ReLU, 3 layers, 1024 units", 1.25, "Table 2"),
    "dropout + max-norm": Reference("dropout NN + max-norm, ReLU, 3 layers, 1024 units", 1.06, "Table 2"),
}

# What the paper's figures show, in words (the figures give no table of numbers to copy), with the figure.
PAPER_FINDINGS: dict[str, tuple[str, str]] = {
    "width fixed": ("with the width n fixed, keeping very few units underfits; test error is flat for retention "
                    "0.4 to 0.8 (drop rates 0.2 to 0.6) and rises as nothing is dropped", "Fig. 9a"),
    "kept units fixed": ("with n × retention fixed, low retention does much better than with the width fixed; the "
                         "curve is U-shaped, best near retention 0.6 (drop rate 0.4), with 0.5 close to optimal (§7.3)",
                         "Fig. 9b"),
    "data-set size": ("training sets of 100, 500, 1K, 5K, 10K and 50K digits: dropout gives no improvement on the "
                      "two smallest; its gain grows with the size up to a point, then shrinks", "Fig. 10"),
    "Monte-Carlo averaging": ("around k = 50 sampled sub-networks, Monte-Carlo averaging matches weight scaling; "
                              "beyond that it is slightly better, within one standard deviation", "Fig. 11"),
}

# The MNIST settings of the paper's Appendix B.1, with the section named: reproductions quote its text word for word
# ("p = 0.5 in all hidden layers and p = 0.8 in the input layer. A final momentum of 0.95 and weight constraints with
# c = 2 was used in all the layers", p being the retention probability); the paper itself was not at hand.
APPENDIX_B1: dict[str, str] = {
    "drop rate, inputs": "0.2 (retention 0.8; Appendix B.1)",
    "drop rate, hidden": "0.5 (retention 0.5; Appendix B.1)",
    "max-norm radius c": "2 in all layers (Appendix B.1; general advice: 3 to 4)",
    "momentum": "final 0.95 (Appendix B.1; general advice: 0.95 to 0.99)",
}

# The MNIST settings the paper states, with the section that states them (Srivastava et al., 2014); None: the paper
# does not say.
PAPER_SETTINGS: dict[str, str | None] = {
    "data": "MNIST, 60,000 training digits, 10,000 test",
    "hidden layers": "3 × 1024 ReLU (Table 2); 2048 units (Fig. 9a); n × retention = 256 (Fig. 9b)",
    **APPENDIX_B1,
    "learning rate": None,
    "batch size": None,
    "weight updates": "about 1 million",
    "seeds": None,
}

UNSTATED = "not stated"

# The settings of the figures that the paper chapters redraw, with the section of the paper each comes from, where
# they differ from PAPER_SETTINGS. §7.3 (Fig. 9) is known here as paper summaries quote it; the network of §7.4
# (Fig. 10) only from secondary summaries. The chapters say so once, under their settings table.
FIGURE_SETTINGS: dict[str, dict[str, str | None]] = {
    "table2": {"hidden layers": "3 × 1024 ReLU (Table 2)",
               "learning rate": None, "batch size": None, "seeds": None},
    "fig9": {"hidden layers": "§7.3: 3 × 2048 (Fig. 9a); n × retention = 256, 256, 512 (Fig. 9b)",
             "drop rate, inputs": "none in Fig. 9a (§7.3)",
             "learning rate": None, "batch size": None, "seeds": None},
    "fig10": {"data": "MNIST subsets of 100 to 50,000 training digits, 10,000 test (Fig. 10)",
              "hidden layers": "1024, 1024, 2048 (§7.4)",
              "drop rate, inputs": "0.2 (retention 0.8; §7.4)",
              "drop rate, hidden": "0.5 (retention 0.5; §7.4)",
              "max-norm radius c": "not stated for Fig. 10 (Appendix B.1: 2, for the Table 2 nets)",
              "momentum": "not stated for Fig. 10 (Appendix B.1: final 0.95, for the Table 2 nets)",
              "weight updates": "not stated for Fig. 10",
              "learning rate": None, "batch size": None, "seeds": None},
}

# What the column of full-MNIST runs is: a larger-data run of each page's own network, not the paper's set-up.
LARGE_SCALE = "full-MNIST scale (on a GPU)"


def _describe(sweep: Sweep, n_train: int) -> dict[str, str]:
    """A sweep's settings in the words of PAPER_SETTINGS."""
    p: Mapping[str, Any] = sweep.parameters
    methods = p.get("methods", {})
    dropout = methods.get("dropout", {"drop_rate": p.get("drop_rate", 0.0),
                                      "input_drop_rate": p.get("input_drop_rate", 0.0)})
    radius = [m["max_norm"] for m in methods.values() if "max_norm" in m] or ([p["max_norm"]] if "max_norm" in p
                                                                             else [])
    momentum = (f"{p['momentum']} rising to {p['momentum_end']}" if p.get("momentum_end") is not None
                else f"{p.get('momentum')} throughout")
    lrs = sorted({setting["lr"] for setting in sweep.grid if "lr" in setting}) or [p.get("lr")]
    steps = -(-n_train // int(p["batch_size"]))
    updates = (f"{int(p['updates']):,} at every size" if "updates" in p
               else f"{int(p['epochs']) * steps:,} ({p['epochs']} epochs of {steps})")
    data = {"mnist5k": "the 5,000-digit MNIST subset: 4,000 training, 500 validation, 500 test",
            "mnist": "MNIST: 54,000 training, 6,000 validation, 10,000 test",
            "mnist1d": "MNIST-1D (generated): up to 50,000 training, 10,000 test"}
    dataset = p.get("dataset") or sweep.grid[0].get("dataset")
    width = f"{p.get('layers')} × {p.get('width')} ReLU"
    if "kept" in p:
        width += f"; n × (1 − rate) = {p['kept']}"
    return {
        "data": data.get(dataset, str(dataset)),
        "hidden layers": width,
        "drop rate, inputs": f"{dropout.get('input_drop_rate', 0.0):g}",
        "drop rate, hidden": ("the swept rate" if "rate" in sweep.setting_names
                              else f"{dropout.get('drop_rate', 0.0):g}"),
        "max-norm radius c": f"{radius[0]:g}" if radius else "none",
        "momentum": momentum,
        "learning rate": ", ".join(f"{lr:g}" for lr in lrs) + (" (one grid, best on validation per method)"
                                                                 if len(lrs) > 1 else ""),
        "batch size": f"{p['batch_size']}",
        "weight updates": updates,
        "seeds": f"{len(sweep.seeds)}",
    }


def differences(name: str) -> pd.DataFrame:
    """Every setting of stored sweep `name` side by side: this page's runs, the paper-scale runs and the paper.

    Rows are PAPER_SETTINGS' keys; "not stated" marks what the paper does not say. The middle column is the same
    sweep on full MNIST (LARGE_SCALE), a larger-data run of this page's network rather than the paper's set-up. A
    setting in which the three agree is kept, so that the table is the whole configuration, not only its
    differences.
    Chapters: paper_mnist, paper_rate, paper_data_size, ensemble
    """
    if name not in SWEEPS:
        raise ValueError(f"no stored sweep {name!r}; the sweeps are {sorted(SWEEPS)}")
    laptop = _describe(SWEEPS[name], 4_000 if SWEEPS[name].parameters.get("dataset") == "mnist5k" else 50_000)
    paper_sweep = PAPER_SWEEPS.get(name) or PAPER_SWEEPS.get(name.split("_")[0])
    paper_scale = _describe(paper_sweep, 54_000) if paper_sweep else dict.fromkeys(laptop, "–")
    paper = {key: value or "not stated" for key, value in PAPER_SETTINGS.items()}
    figure = next((key for key in FIGURE_SETTINGS if name == key or name.startswith(key + "_")), None)
    if figure is not None:
        paper.update({key: value or UNSTATED for key, value in FIGURE_SETTINGS[figure].items()})
    if "rate" in SWEEPS[name].setting_names:
        paper["drop rate, hidden"] = "the swept rate (Fig. 9)"
    return pd.DataFrame({
        "this page": laptop,
        LARGE_SCALE: paper_scale,
        "the paper": paper,
    }).rename_axis("setting")


# The three paper chapters' titles (their H1 headings), which name them in tables a reader sees.
CHAPTER_TITLES: dict[str, str] = {
    "paper_mnist": "The paper's MNIST table, on a laptop",
    "paper_rate": "The drop rate, two ways",
    "paper_data_size": "Dropout and the size of the training set",
}

# The three stored sweeps that train the same plain 2 × 256 ReLU net on the same 4,000 MNIST-subset digits, and
# how to pick that net's runs out of each: (chapter, sweep, rows of the plain net on all 4,000 digits).
_PLAIN_RUNS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("paper_mnist", "table2", {"method": "no dropout"}),
    ("paper_rate", "fig9", {"mode": "fixed width", "rate": 0.0}),
    ("paper_data_size", "fig10_mnist5k", {"method": "no dropout", "size": 4_000}),
)


def _schedule_words(sweep: Sweep, lr: float) -> dict[str, str]:
    """A sweep's training schedule in a few words: updates, learning rate and momentum."""
    p: Mapping[str, Any] = sweep.parameters
    updates = int(p["updates"]) if "updates" in p else int(p["epochs"]) * -(-4_000 // int(p["batch_size"]))
    momentum = (f"{p['momentum']:g} → {p['momentum_end']:g}" if p.get("momentum_end") is not None
                else f"{p['momentum']:g}")
    return {"updates": f"{updates:,}", "lr": f"{lr:g}", "momentum": momentum}


def plain_levels(*, titled: bool = False) -> pd.DataFrame:
    """The plain 2 × 256 net on the 4,000 digits in each paper chapter's sweep: its schedule and mean errors (%).

    The three chapters train the same network on the same digits with different schedules, so its error differs
    from page to page. In table2 the learning rate is the one with the lowest mean validation error. Rows are the
    chapters' file stems, for code to look up; `titled=True` names them by CHAPTER_TITLES instead, for display.
    Chapters: paper_mnist, paper_rate, paper_data_size
    """
    from utils.store import load_results

    rows = {}
    for chapter, name, where in _PLAIN_RUNS:
        sweep = SWEEPS[name]
        runs = load_results(sweep)
        for column, value in where.items():
            runs = runs[runs[column] == value]
        if "lr" in runs.columns:
            lr = float(runs.groupby("lr")["val_error"].mean().idxmin())
            runs = runs[runs["lr"] == lr]
        else:
            lr = float(sweep.parameters["lr"])
        if runs["seed"].nunique() != len(runs) or runs.empty:
            raise ValueError(f"expected one plain run per seed in sweep {name!r}, got {len(runs)} rows")
        rows[chapter] = {**_schedule_words(sweep, lr),
                         "test error %": f"{100 * runs['test_error'].mean():.1f}",
                         "train error %": f"{100 * runs['train_error'].mean():.1f}"}
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("page")
    return table.rename(index=CHAPTER_TITLES).rename_axis("chapter") if titled else table
