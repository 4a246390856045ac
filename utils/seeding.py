"""One call that makes every random source the book uses repeatable."""

from __future__ import annotations

import importlib.util
import os
import random
from numbers import Integral

import numpy as np

from utils.checks import check_seed


def seed_everything(seed: int, *, deterministic: bool = True, torch_threads: int | None = 1) -> np.random.Generator:
    """Seed Python, NumPy, PyTorch and Keras/TensorFlow; return a fresh NumPy Generator from the same seed.

    With ``deterministic=True`` (the default) PyTorch and TensorFlow are also put in their deterministic
    modes, so that a run gives bit-identical numbers when it is repeated on the same machine.
    PyTorch's CPU results depend on how many threads share a sum, so PyTorch is also set to `torch_threads` CPU
    threads (default 1: the same numbers on a laptop with 2 cores or 16, and the fastest setting for the book's
    small networks); None leaves PyTorch's thread setting alone, for timings and full-scale runs.
    Frameworks that are not installed are skipped.
    Chapter: setup_check
    """
    seed = check_seed(seed)
    if torch_threads is not None and (isinstance(torch_threads, bool) or not isinstance(torch_threads, Integral)
                                      or torch_threads < 1):
        raise ValueError(f"torch_threads must be a positive integer or None, got {torch_threads!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses; this interpreter's hashing is fixed at start-up
    random.seed(seed)
    np.random.seed(seed)
    if importlib.util.find_spec("torch") is not None:
        _seed_torch(seed, deterministic, torch_threads)
    if importlib.util.find_spec("keras") is not None:
        _seed_keras(seed, deterministic)
    return np.random.default_rng(seed)


def _seed_torch(seed: int, deterministic: bool, threads: int | None) -> None:
    """Seed PyTorch's CPU and CUDA generators, set its deterministic mode and (unless None) its CPU threads."""
    # cuBLAS needs this workspace setting before deterministic matrix products on a GPU.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    if threads is not None:
        torch.set_num_threads(threads)


def _seed_keras(seed: int, deterministic: bool) -> None:
    """Seed Keras 3 (and through it TensorFlow) and set TensorFlow's op determinism."""
    import keras

    keras.utils.set_random_seed(seed)  # Python, NumPy and the backend's global seed
    if keras.backend.backend() == "tensorflow":
        # TensorFlow exports only the "enable" half publicly; both halves live in this module.
        from tensorflow.python.framework import config as tf_config

        if deterministic:
            tf_config.enable_op_determinism()
        else:
            tf_config.disable_op_determinism()
