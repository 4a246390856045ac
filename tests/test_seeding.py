"""seed_everything makes Python, NumPy, PyTorch and Keras/TensorFlow repeatable, and rejects bad seeds."""

import random

import numpy as np
import pytest
import torch

from utils.seeding import seed_everything


def _draws() -> dict[str, np.ndarray]:
    """One draw from every random source the book uses."""
    import keras
    import tensorflow as tf
    import torch

    return {
        "python": np.array([random.random() for _ in range(3)]),
        "numpy": np.random.rand(3),
        "torch": torch.rand(3).numpy(),
        "tensorflow": tf.random.uniform((3,)).numpy(),
        "keras dropout": np.asarray(keras.layers.Dropout(0.5)(np.ones((1, 8), "float32"), training=True)),
    }


def test_same_seed_repeats_every_source():
    seed_everything(123)
    first = _draws()
    seed_everything(123)
    second = _draws()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_different_seeds_differ():
    seed_everything(1)
    first = _draws()
    seed_everything(2)
    second = _draws()
    for name in ("python", "numpy", "torch", "tensorflow"):
        assert not np.array_equal(first[name], second[name]), name


def test_returns_a_generator_seeded_the_same_way():
    a = seed_everything(7).random(4)
    b = seed_everything(7).random(4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.random.default_rng(7).random(4))


def test_deterministic_modes_follow_the_flag():
    import torch
    from tensorflow.python.framework import config as tf_config

    seed_everything(0, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert not tf_config.is_op_determinism_enabled()
    seed_everything(0)
    assert torch.are_deterministic_algorithms_enabled()
    assert tf_config.is_op_determinism_enabled()


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (2**32, ValueError), (1.5, TypeError),
                                         ("3", TypeError), (True, TypeError), (None, TypeError)])
def test_bad_seeds_are_rejected(seed, error):
    with pytest.raises(error, match="seed"):
        seed_everything(seed)


def test_pytorch_runs_on_one_thread_unless_told_otherwise():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        seed_everything(0)
        assert torch.get_num_threads() == 1  # the same sums on every machine
        torch.set_num_threads(2)
        seed_everything(0, torch_threads=None)
        assert torch.get_num_threads() == 2  # left alone
        seed_everything(0, torch_threads=3)
        assert torch.get_num_threads() == 3
        for bad in (0, -1, 1.5, True, "2"):
            with pytest.raises(ValueError, match="torch_threads"):
                seed_everything(0, torch_threads=bad)
    finally:
        torch.set_num_threads(before)

