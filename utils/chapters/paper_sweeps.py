"""The runs behind the paper chapters' stored sweeps: one function per figure or table, `run(settings, seed)`.

`utils.sweeps` names these functions with their grids and seeds; `python -m tools.experiments` runs them on every
core and stores their rows in `data/results/`; the chapters read the rows. Each run seeds everything from its seed,
so a stored row can be re-run and compared. Rates are drop rates, as everywhere in the book.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from utils.data import CACHE_DIR, load_dataset
from utils.experiments import train_fresh_mlp

Arrays = tuple[np.ndarray, np.ndarray]
DIVERGED_ERROR = 0.9  # the error of a guess among 10 classes: what a run whose loss became NaN is scored at
MNIST1D_POOL = 75_000  # signals generated: 60,000 to draw training sets from and 15,000 held out


def subset(x: np.ndarray, y: np.ndarray, n: int, *, seed: int) -> Arrays:
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


@cache
def mnist1d_splits(n_test: int = 10_000) -> tuple[Arrays, Arrays]:
    """MNIST-1D at the paper's sizes: a 60,000-signal training pool and `n_test` test signals, generated offline once.

    `mnist1d.data.make_dataset` (its default arguments, seed 42, `num_samples` raised to MNIST1D_POOL) makes them;
    the result is cached in data/cache/ so that the book's processes generate it once.
    Chapter: paper_data_size
    """
    cache_file = Path(CACHE_DIR) / f"mnist1d_{MNIST1D_POOL}.npz"
    if not cache_file.is_file():
        import mnist1d.data

        from utils.data import _save_npz_atomic

        arguments = mnist1d.data.get_dataset_args()
        arguments.num_samples = MNIST1D_POOL
        python_state, numpy_state = random.getstate(), np.random.get_state()
        try:
            made = mnist1d.data.make_dataset(arguments)
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
        _save_npz_atomic(cache_file, x=made["x"].astype(np.float32), y=made["y"].astype(np.int64),
                         x_test=made["x_test"].astype(np.float32), y_test=made["y_test"].astype(np.int64))
    with np.load(cache_file, allow_pickle=False) as stored:
        train = (stored["x"], stored["y"])
        test = (stored["x_test"][:n_test], stored["y_test"][:n_test])
    return train, test


@cache
def _splits(dataset: str) -> dict[str, Arrays]:
    """The three splits of `dataset` (mnist5k at the laptop scale; full MNIST, from a local file, at the paper's)."""
    data = load_dataset(dataset)
    return {"train": (data.x_train, data.y_train), "val": (data.x_val, data.y_val),
            "test": (data.x_test, data.y_test)}


def _device(s: Mapping[str, Any]) -> torch.device:
    """The device a run trains on: "cpu" (the laptop scale), or "auto": the first CUDA GPU when there is one."""
    if s.get("device", "cpu") == "auto" and torch.cuda.is_available():
        return torch.device("cuda:0")
    return torch.device("cpu")


def _predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Class predictions of `model` in eval mode, in batches, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        return np.concatenate([model(torch.as_tensor(part).to(device)).argmax(dim=1).cpu().numpy()
                               for part in np.array_split(x, max(1, -(-len(x) // 10_000)))])


def _error(model: nn.Module, split: Arrays) -> float:
    """Test error of `model` on one (inputs, labels) split; DIVERGED_ERROR when the weights are not finite."""
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        return DIVERGED_ERROR
    return float(np.mean(_predict(model, split[0]) != split[1]))


def correct_bits(model: nn.Module, split: Arrays) -> str:
    """Which examples of `split` the model gets right, as a hexadecimal bit string (for McNemar's test).

    Chapter: paper_mnist
    """
    right = _predict(model, split[0]) == split[1]
    return np.packbits(right).tobytes().hex()


def unpack_bits(text: str, n: int) -> np.ndarray:
    """The boolean array that `correct_bits` packed, `n` examples long.

    Chapter: paper_mnist
    """
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))[:n].astype(bool)


def unit_norms(model: nn.Module) -> np.ndarray:
    """The L2 norm of every unit's incoming weight vector, over all Linear layers (what max-norm bounds).

    Chapter: paper_mnist
    """
    return np.concatenate([layer.weight.detach().norm(dim=1).cpu().numpy() for layer in model
                           if isinstance(layer, nn.Linear)])


def _train(train: Arrays, s: Mapping[str, Any], seed: int, *, epochs: int) -> nn.Module:
    """Train the MLP that settings `s` describe on `train` (a divergence shows as non-finite weights).

    A setting `method` names one of `s["methods"]`, whose drop rates and max-norm radius then apply.
    """
    if "method" in s:
        s = {**s, **s["methods"][s["method"]]}
    model, _ = train_fresh_mlp(
        train, None, hidden=[int(s["width"])] * int(s["layers"]), n_classes=10, epochs=epochs, seed=seed,
        drop_rate=float(s.get("drop_rate", 0.0)), input_drop_rate=float(s.get("input_drop_rate", 0.0)),
        lr=float(s["lr"]),
        lr_end=s.get("lr_end"), momentum=float(s["momentum"]), momentum_end=s.get("momentum_end"),
        max_norm=s.get("max_norm"), batch_size=int(s["batch_size"]), eval_every=epochs, device=_device(s))
    return model


def table2_run(s: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """One run of the Table 2 analogue: train/val/test error, unit-norm statistics and which test digits it gets right.

    Chapter: paper_mnist
    """
    data = _splits(s["dataset"])
    model = _train(data["train"], s, seed, epochs=int(s["epochs"]))
    norms = unit_norms(model)
    radius = float(s["radius"])  # the max-norm radius c of the constrained arm, checked on every arm
    return {
        "train_error": _error(model, data["train"]),
        "val_error": _error(model, data["val"]),
        "test_error": _error(model, data["test"]),
        "max_unit_norm": float(np.nanmax(norms)) if np.isfinite(norms).any() else float("nan"),
        "at_radius": float(np.mean(norms >= radius * (1 - 1e-4))),
        "test_correct": correct_bits(model, data["test"]),
    }


def rate_run(s: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """One run of the Fig. 9 analogue: the hidden width follows the mode, and every hidden layer drops `rate`.

    Chapter: paper_rate
    """
    data = _splits(s["dataset"])
    rate = float(s["rate"])
    width = int(s["width"]) if s["mode"] == "fixed width" else int(round(int(s["kept"]) / (1.0 - rate)))
    model = _train(data["train"], {**s, "width": width, "drop_rate": rate}, seed, epochs=int(s["epochs"]))
    return {"width_used": width, "train_error": _error(model, data["train"]), "val_error": _error(model, data["val"]),
            "test_error": _error(model, data["test"])}


def size_run(s: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """One run of the Fig. 10 analogue: a stratified training set of `size` examples, a fixed number of updates.

    Chapter: paper_data_size
    """
    if s["dataset"] == "mnist1d":
        pool, test = mnist1d_splits()
    else:
        data = _splits(s["dataset"])
        pool, test = data["train"], data["test"]
    n = int(s["size"])
    train = subset(pool[0], pool[1], n, seed=seed)
    steps_per_epoch = -(-n // int(s["batch_size"]))
    epochs = -(-int(s["updates"]) // steps_per_epoch)
    model = _train(train, s, seed, epochs=epochs)
    return {"epochs": epochs, "updates": epochs * steps_per_epoch, "train_error": _error(model, train),
            "test_error": _error(model, test)}


def mc_run(s: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """One run of the Fig. 11 analogue: a dropout net's test error by weight scaling and by Monte-Carlo averaging.

    The Monte-Carlo estimate averages the softmax outputs of k sub-networks (dropout on, as in training), for each k
    in `ks`, with the masks drawn from `seed`.
    Chapter: ensemble
    """
    data = _splits(s["dataset"])
    model = _train(data["train"], s, seed, epochs=int(s["epochs"]))
    device = next(model.parameters()).device
    x, y = torch.as_tensor(data["test"][0]).to(device), data["test"][1]
    metrics: dict[str, Any] = {"scaling_error": _error(model, data["test"])}
    ks = [int(k) for k in str(s["ks"]).split()]
    generator_seed = 1_000_003 * seed + 7
    torch.manual_seed(generator_seed)
    model.train()
    total = torch.zeros(len(y), 10, device=device)
    with torch.no_grad():
        for k in range(1, max(ks) + 1):
            total += torch.softmax(model(x), dim=1)
            if k in ks:
                metrics[f"mc_error_{k}"] = float(np.mean(total.argmax(dim=1).cpu().numpy() != y))
    model.eval()
    return metrics
