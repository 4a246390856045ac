"""The paper's MNIST experiments (Srivastava et al., 2014) at two scales, for the part "Reproducing the paper".

- The **scale switch**: one environment variable, SCALE_ENV, picks the configuration. "laptop" (the default, what the
  book's stored outputs and CI use) runs on the 5,000-digit MNIST subset on the CPU in well under a minute per
  chapter; "paper" runs 3x1024 ReLU nets on full MNIST (read from a local file) on a CUDA GPU when there is one.
- The **configurations** (`Scale`) for the Table 2, Fig. 9 and Fig. 10 analogues at each scale.
- The paper's **reference numbers**, as data with the table or figure they come from.
- The **runs** themselves, shared by the chapters and by `python -m tools.paper_scale`.

Rates here are drop rates, as everywhere in the book; the paper's p is the keep probability 1 - rate.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter
from sklearn.model_selection import train_test_split

from utils.checks import check_count
from utils.data import Splits, load_dataset
from utils.devices import check_device
from utils.experiments import seed_errors
from utils.plotting import PALETTE
from utils.progress import progress
from utils.stats import format_mean_sd as mean_std

SCALE_ENV = "DROPOUT_IN_DEPTH_SCALE"
SCALES: tuple[str, ...] = ("laptop", "paper")
DEFAULT_SCALE = "laptop"
DEVICES: tuple[str, ...] = ("cpu", "auto")
RATE_MODES: tuple[str, ...] = ("fixed width", "fixed kept units")


@dataclass(frozen=True)
class Method:
    """One row of the Table 2 analogue: a ReLU MLP trained with this dropout and this weight constraint.

    Chapter: paper_mnist
    """

    name: str
    drop_rate: float = 0.0
    input_drop_rate: float = 0.0
    max_norm: float | None = None

    def train_kwargs(self) -> dict[str, float | None]:
        """The arguments of `utils.experiments.train_fresh_mlp` that this method sets."""
        return {"drop_rate": self.drop_rate, "input_drop_rate": self.input_drop_rate, "max_norm": self.max_norm}


@dataclass(frozen=True)
class Reference:
    """A test error the paper reports, in percent, with what it was measured on and where the paper gives it.

    Chapter: paper_mnist
    """

    model: str
    error_percent: float
    source: str


# The paper's Table 2 rows that our three methods stand beside. Its "standard" row is a logistic 2x800 net
# (Simard et al., 2003); ours is a ReLU net, the same as the dropout rows but without dropout.
PAPER_TABLE2: dict[str, Reference] = {
    "no dropout": Reference("standard neural net, logistic, 2×800", 1.60, "Table 2"),
    "dropout": Reference("dropout NN, ReLU, 3×1024", 1.25, "Table 2"),
    "dropout + max-norm": Reference("dropout NN + max-norm, ReLU, 3×1024", 1.06, "Table 2"),
}

# What the paper's figures show, in words (the figures give no table of numbers to copy).
PAPER_FINDINGS: dict[str, tuple[str, str]] = {
    "fig9_fixed_width": ("with the width fixed, keeping very few units underfits; test error is flat for keep "
                         "probabilities 0.4 to 0.8 (drop rates 0.2 to 0.6) and rises as nothing is dropped",
                         "Fig. 9a"),
    "fig9_fixed_kept": ("with width x keep probability fixed, low keep probabilities do much better than with the "
                        "width fixed; the best keep probability is near 0.6 (this last point is unverified here)",
                        "Fig. 9b"),
    "fig10_data_size": ("training sets of 100, 500, 1K, 5K, 10K and 50K digits: dropout gives no improvement on "
                        "the two smallest; its gain grows with the size up to a point, then shrinks",
                        "Fig. 10"),
}


@dataclass(frozen=True)
class Scale:
    """Every setting of the three experiments at one scale (widths, epochs, seeds, grids, data, device).

    Chapters: paper_mnist, paper_rate, paper_data_size
    """

    name: str
    dataset: str  # "mnist5k" or "mnist" (full MNIST from a local file; falls back to mnist5k with a warning)
    device: str  # "cpu", or "auto": the first CUDA GPU when PyTorch sees one, else the CPU
    seeds: tuple[int, ...]
    batch_size: int
    momentum: float
    # Table 2 analogue
    hidden: tuple[int, ...]
    epochs: int
    lr_grid: tuple[float, ...]  # searched on the validation split, per method, with the first seed
    max_norm: float
    # Fig. 9 analogue
    rate_layers: int
    rate_width: int  # the fixed width n; the fixed-kept-units curve holds n * (1 - rate) at this value
    rates: tuple[float, ...]
    rate_epochs: int
    rate_lr: float
    # Fig. 10 analogue
    sizes: tuple[int, ...]
    size_hidden: tuple[int, ...]
    size_updates: int  # weight updates per run (at least `size_min_epochs` epochs)
    size_min_epochs: int
    size_lr: float
    size_drop_rate: float
    size_input_drop_rate: float
    train_limit: int | None = None  # cap on the training examples used (for a quick smoke run); None: all
    threads: int | None = None  # PyTorch CPU threads during the runs; None: PyTorch's default

    def methods(self) -> tuple[Method, ...]:
        """The three methods of the Table 2 analogue, with this scale's max-norm radius."""
        return (Method("no dropout"),
                Method("dropout", drop_rate=0.5, input_drop_rate=0.2),
                Method("dropout + max-norm", drop_rate=0.5, input_drop_rate=0.2, max_norm=self.max_norm))

    def describe(self) -> str:
        """A few lines saying what this scale runs."""
        widths = "×".join(str(n) for n in self.hidden) if len(set(self.hidden)) > 1 else \
            f"{len(self.hidden)}×{self.hidden[0]}"
        return "\n".join([
            f"scale {self.name!r}: data {self.dataset!r}, device {self.device!r}, seeds {list(self.seeds)}",
            f"Table 2: ReLU {widths}, {self.epochs} epochs, batch {self.batch_size}, momentum {self.momentum}, "
            f"learning rates searched {list(self.lr_grid)}, max-norm {self.max_norm}",
            f"Fig. 9: {self.rate_layers}×{self.rate_width}, drop rates {list(self.rates)}, {self.rate_epochs} epochs",
            f"Fig. 10: sizes {list(self.sizes)}, {self.size_updates} updates (at least {self.size_min_epochs} "
            f"epochs) per run",
        ])


SCALE_CONFIGS: dict[str, Scale] = {
    "laptop": Scale(
        name="laptop", dataset="mnist5k", device="cpu", seeds=(0, 1, 2), batch_size=100, momentum=0.9,
        hidden=(256, 256), epochs=15, lr_grid=(0.1, 0.3), max_norm=2.0,
        rate_layers=2, rate_width=64, rates=(0.0, 0.2, 0.4, 0.6, 0.8), rate_epochs=10, rate_lr=0.1,
        sizes=(100, 300, 1000, 4000), size_hidden=(256, 256), size_updates=200, size_min_epochs=10, size_lr=0.1,
        size_drop_rate=0.5, size_input_drop_rate=0.2,
        threads=1,  # results then do not depend on the number of cores, and a busy machine does not stall them
    ),
    "paper": Scale(
        name="paper", dataset="mnist", device="auto", seeds=(0, 1, 2), batch_size=100, momentum=0.9,
        hidden=(1024, 1024, 1024), epochs=100, lr_grid=(0.03, 0.1, 0.3, 1.0), max_norm=2.0,
        rate_layers=3, rate_width=1024, rates=(0.0, 0.2, 0.4, 0.5, 0.6, 0.8), rate_epochs=50, rate_lr=0.1,
        sizes=(100, 500, 1000, 5000, 10000, 50000), size_hidden=(1024, 1024, 1024), size_updates=20000,
        size_min_epochs=50, size_lr=0.1, size_drop_rate=0.5, size_input_drop_rate=0.2,
    ),
}

# Overrides that make any scale tiny, so that a test can run its whole code path in seconds.
SMOKE: dict[str, object] = {
    "seeds": (0, 1), "hidden": (8,), "epochs": 1, "lr_grid": (0.1, 0.3), "rate_layers": 1, "rate_width": 8,
    "rates": (0.0, 0.5), "rate_epochs": 1, "sizes": (20, 40), "size_hidden": (8,), "size_updates": 2,
    "size_min_epochs": 1, "train_limit": 200,
}


def scale_name(value: str | None = None) -> str:
    """The scale to run: `value`, else the SCALE_ENV environment variable, else "laptop"; checked against SCALES.

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


def get_scale(name: str | None = None, **overrides: object) -> Scale:
    """The configuration of scale `name` (default: from SCALE_ENV), with any field replaced by `overrides`.

    Chapters: paper_mnist, paper_rate, paper_data_size
    """
    scale = SCALE_CONFIGS[scale_name(name)]
    fields = {field.name for field in dataclasses.fields(Scale)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown Scale field(s) {unknown}; the fields are {sorted(fields)}")
    return dataclasses.replace(scale, **overrides) if overrides else scale


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with PyTorch using `n` CPU threads (None: leave the setting alone), then restore the setting.

    Chapters: paper_mnist, paper_rate, paper_data_size
    """
    if n is None:
        yield
        return
    check_count(n, "threads")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pick_device(scale: Scale | str) -> torch.device:
    """The device to train on: the CPU for device 'cpu'; for 'auto', CUDA GPU 0 when PyTorch sees one, else the CPU.

    Chapters: paper_mnist, paper_rate, paper_data_size
    """
    choice = scale.device if isinstance(scale, Scale) else scale
    if choice not in DEVICES:
        raise ValueError(f"a scale's device must be one of {DEVICES}, got {choice!r}")
    if choice == "auto" and torch.cuda.is_available():
        return check_device("cuda:0")
    return check_device("cpu")


def load_data(scale: Scale) -> Splits:
    """Load the scale's dataset (full MNIST falls back to mnist5k with a warning when no local file is found).

    Chapters: paper_mnist, paper_rate, paper_data_size
    """
    data = load_dataset(scale.dataset)
    if scale.train_limit is not None and scale.train_limit < len(data.y_train):
        x, y = subset(data.x_train, data.y_train, scale.train_limit, seed=0)
        data = dataclasses.replace(data, x_train=x, y_train=y)
    return data


def subset(x: np.ndarray, y: np.ndarray, n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified random subset of `n` examples (every class kept in proportion), drawn with `seed`.

    Chapter: paper_data_size
    """
    n_classes = len(np.unique(y))
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not n_classes <= n <= len(y):
        raise ValueError(f"n must be an integer from {n_classes} (one per class) to {len(y)}, got {n!r}")
    if n == len(y):
        return x, y
    x_part, _, y_part, _ = train_test_split(x, y, train_size=int(n), stratify=y, random_state=seed)
    return x_part, y_part


def _splits(data: Splits) -> tuple[tuple[np.ndarray, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The training split, and the splits to measure errors on by name (the training split among them)."""
    train = (data.x_train, data.y_train)
    return train, {"train": train, "val": (data.x_val, data.y_val), "test": (data.x_test, data.y_test)}


def _search_lr(scale: Scale, data: Splits, method: Method, *, device: torch.device | str = "cpu"
               ) -> tuple[float, dict[float, dict[str, float]]]:
    """The work of `search_lr`, with PyTorch's thread setting left as it is."""
    train, evaluation = _splits(data)
    runs = {}
    for lr in progress(scale.lr_grid, desc=f"{method.name}: lr search", unit="lr"):
        errors = seed_errors(train, evaluation, seeds=scale.seeds[:1], hidden=scale.hidden, n_classes=data.n_classes,
                             epochs=scale.epochs, batch_size=scale.batch_size, lr=lr, lr_end=0.0,
                             momentum=scale.momentum, device=device, label=f"lr {lr:g}", **method.train_kwargs())
        runs[lr] = {name: float(values[0]) for name, values in errors.items()}
    best = min(runs, key=lambda lr: (runs[lr]["val"], lr))
    return best, runs


def _run_table2(scale: Scale, data: Splits, *, device: torch.device | str = "cpu",
                lrs: Mapping[str, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The work of `run_table2`, with PyTorch's thread setting left as it is."""
    train, evaluation = _splits(data)
    rows, search_rows = [], []
    for method in scale.methods():
        known: dict[int, dict[str, float]] = {}
        if lrs is not None and method.name in lrs:
            lr = lrs[method.name]
        else:
            lr, searched = _search_lr(scale, data, method, device=device)
            search_rows += [{"method": method.name, "lr": rate, "train_error": run["train"], "val_error": run["val"],
                             "test_error": run["test"]} for rate, run in searched.items()]
            known[scale.seeds[0]] = searched[lr]  # the search already trained the first seed at this lr
        todo = [seed for seed in scale.seeds if seed not in known]
        if todo:
            errors = seed_errors(train, evaluation, seeds=todo, hidden=scale.hidden, n_classes=data.n_classes,
                                 epochs=scale.epochs, batch_size=scale.batch_size, lr=lr, lr_end=0.0,
                                 momentum=scale.momentum, device=device, label=method.name, **method.train_kwargs())
            known |= {seed: {name: float(values[i]) for name, values in errors.items()}
                      for i, seed in enumerate(todo)}
        rows += [{"method": method.name, "lr": lr, "seed": seed, "train_error": known[seed]["train"],
                  "val_error": known[seed]["val"], "test_error": known[seed]["test"]} for seed in scale.seeds]
    columns = ["method", "lr", "train_error", "val_error", "test_error"]
    return pd.DataFrame(rows), pd.DataFrame(search_rows, columns=columns)


def table2_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per method: the chosen lr, our test error in percent as mean ± std over seeds, and the paper's.

    Chapter: paper_mnist
    """
    missing = {"method", "lr", "seed", "test_error"} - set(runs.columns)
    if missing:
        raise ValueError(f"runs lacks column(s) {sorted(missing)}; pass the first table run_table2 returns")
    rows = []
    for method, group in runs.groupby("method", sort=False):
        reference = PAPER_TABLE2.get(method)
        rows.append({
            "method": method,
            "lr": f"{group['lr'].iloc[0]:g}",
            "seeds": len(group),
            **({"train error % (ours)": mean_std(group["train_error"])} if "train_error" in group else {}),
            "test error % (ours)": mean_std(group["test_error"]),
            "paper %": f"{reference.error_percent:.2f}" if reference else "–",
            "paper's model": reference.model if reference else "–",
            "source": reference.source if reference else "–",
        })
    return pd.DataFrame(rows).set_index("method")


def plot_table2(runs: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Plot each method's per-seed test errors (dots), their mean ± std (bar), and the paper's number (diamond).

    Chapter: paper_mnist
    """
    missing = {"method", "test_error"} - set(runs.columns)
    if missing:
        raise ValueError(f"runs lacks column(s) {sorted(missing)}; pass the first table run_table2 returns")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 3.6))
    methods = list(dict.fromkeys(runs["method"]))
    for i, method in enumerate(methods):
        errors = runs.loc[runs["method"] == method, "test_error"].to_numpy()
        spread = np.linspace(-0.08, 0.08, len(errors))
        ax.plot(i + spread, errors, "o", color=PALETTE[0], alpha=0.6,
                label="ours, one seed" if i == 0 else None)
        ax.errorbar(i + 0.2, errors.mean(), yerr=errors.std(), fmt="s", color=PALETTE[0], capsize=4,
                    label="ours, mean ± std" if i == 0 else None)
        if method in PAPER_TABLE2:
            ax.plot(i - 0.2, PAPER_TABLE2[method].error_percent / 100, "D", color=PALETTE[3],
                    label="paper (full MNIST)" if i == 0 else None)
    ax.set_xticks(range(len(methods)), labels=methods)
    ax.set_xlim(-0.6, len(methods) - 0.4)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("test error")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="lower left")
    return ax


def rate_width(scale: Scale, rate: float, mode: str) -> int:
    """The hidden width at drop rate `rate`: the scale's width n, or round(n / (1 - rate)), which keeps n (1 - rate).

    Chapter: paper_rate
    """
    if mode not in RATE_MODES:
        raise ValueError(f"mode must be one of {RATE_MODES}, got {mode!r}")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"the drop rate must satisfy 0 <= rate < 1, got {rate}")
    if mode == "fixed width":
        return scale.rate_width
    return int(round(scale.rate_width / (1.0 - rate)))


def _rate_sweep(scale: Scale, data: Splits, *, device: torch.device | str = "cpu") -> dict[str, dict[str, np.ndarray]]:
    """The work of `rate_sweep`, with PyTorch's thread setting left as it is."""
    train, evaluation = _splits(data)
    done: dict[tuple[int, float], dict[str, np.ndarray]] = {}
    results: dict[str, dict[str, list[np.ndarray]]] = {mode: {split: [] for split in evaluation} for mode in RATE_MODES}
    for mode in RATE_MODES:
        for rate in progress(scale.rates, desc=f"Fig. 9, {mode}", unit="rate"):
            width = rate_width(scale, rate, mode)
            key = (width, rate)
            if key not in done:
                done[key] = seed_errors(train, evaluation, seeds=scale.seeds, hidden=[width] * scale.rate_layers,
                                        n_classes=data.n_classes, epochs=scale.rate_epochs,
                                        batch_size=scale.batch_size, lr=scale.rate_lr, lr_end=0.0,
                                        momentum=scale.momentum, drop_rate=rate, device=device,
                                        label=f"rate {rate:g}, width {width}")
            for split in evaluation:
                results[mode][split].append(done[key][split])
    return {mode: {split: np.stack(columns, axis=1) for split, columns in parts.items()}
            for mode, parts in results.items()}


def size_epochs(scale: Scale, n: int) -> int:
    """Epochs for a training set of `n` examples: enough for the scale's weight updates, and at least its minimum.

    Chapter: paper_data_size
    """
    steps_per_epoch = -(-n // scale.batch_size)
    return max(scale.size_min_epochs, -(-scale.size_updates // steps_per_epoch))


def _size_sweep(scale: Scale, data: Splits, *, device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """The work of `size_sweep`, with PyTorch's thread setting left as it is."""
    sizes = [n for n in scale.sizes if n <= len(data.y_train)]
    if len(sizes) != len(scale.sizes):
        raise ValueError(f"sizes {list(scale.sizes)} exceed the {len(data.y_train)} training examples")
    settings = {"no dropout": {},
                "dropout": {"drop_rate": scale.size_drop_rate, "input_drop_rate": scale.size_input_drop_rate}}
    errors = {name: np.zeros((len(scale.seeds), len(sizes))) for name in settings}
    test = {"test": (data.x_test, data.y_test)}
    for j, n in enumerate(progress(sizes, desc="Fig. 10", unit="size")):
        for i, seed in enumerate(scale.seeds):
            train = subset(data.x_train, data.y_train, n, seed=seed)
            for name, kwargs in settings.items():
                errors[name][i, j] = seed_errors(train, test, seeds=[seed], hidden=scale.size_hidden,
                                                 n_classes=data.n_classes, epochs=size_epochs(scale, n),
                                                 batch_size=scale.batch_size, lr=scale.size_lr, lr_end=0.0,
                                                 momentum=scale.momentum, device=device, label=f"{name}, n={n}",
                                                 **kwargs)["test"][0]
    return errors


def write_table(table: pd.DataFrame, folder: str | os.PathLike, stem: str) -> tuple[Path, Path]:
    """Write `table` as `stem`.csv and `stem`.md in `folder` (created if needed); return both paths.

    Chapters: paper_mnist, paper_rate, paper_data_size
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = folder / f"{stem}.csv", folder / f"{stem}.md"
    table.to_csv(csv_path)
    md_path.write_text(table.to_markdown() + "\n", encoding="utf-8")
    return csv_path, md_path


def sweep_table(settings: Sequence[float], errors: Mapping[str, np.ndarray], *, setting: str) -> pd.DataFrame:
    """A table of mean ± std test error in percent, one row per setting and one column per curve.

    Chapters: paper_rate, paper_data_size
    """
    table = pd.DataFrame({name: [mean_std(values[:, j]) for j in range(len(settings))]
                          for name, values in errors.items()},
                         index=pd.Index([f"{s:g}" for s in settings], name=setting))
    return table


def search_lr(scale: Scale, data: Splits, method: Method, *, device: torch.device | str = "cpu"
              ) -> tuple[float, dict[float, dict[str, float]]]:
    """Train `method` once per learning rate in the scale's grid (first seed); return the best lr and every run.

    The best lr has the lowest validation error (the smaller lr on a tie); each run gives its train, validation and
    test error.
    Chapter: paper_mnist
    """
    with torch_threads(scale.threads):
        return _search_lr(scale, data, method, device=device)


def run_table2(scale: Scale, data: Splits, *, device: torch.device | str = "cpu",
               lrs: Mapping[str, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the Table 2 analogue: per method, search the lr on validation (unless `lrs` gives it), then train every seed.

    Return (per-seed runs: method, lr, seed, train, val and test error; the search: the same, first seed).
    Chapter: paper_mnist
    """
    with torch_threads(scale.threads):
        return _run_table2(scale, data, device=device, lrs=lrs)


def rate_sweep(scale: Scale, data: Splits, *, device: torch.device | str = "cpu") -> dict[str, dict[str, np.ndarray]]:
    """The Fig. 9 analogue: for each mode in RATE_MODES, train, val and test error as arrays (seeds, rates).

    Every hidden layer (not the input) gets the drop rate. At rate 0 both modes train the same network, which runs once.
    Chapter: paper_rate
    """
    with torch_threads(scale.threads):
        return _rate_sweep(scale, data, device=device)


def size_sweep(scale: Scale, data: Splits, *, device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """The Fig. 10 analogue: test error (seeds, sizes) without and with dropout, on subsets of the training split.

    The subsets are stratified. Each seed draws its own subset, and both methods train on that same subset.
    Chapter: paper_data_size
    """
    with torch_threads(scale.threads):
        return _size_sweep(scale, data, device=device)
