"""The environment variables the book's outputs depend on, set by `utils.setup` before any framework is imported."""

from __future__ import annotations

import os

# Each value is a default: a value the user already set wins.
DEFAULTS = {
    # Keras 3 runs on TensorFlow in this book, whatever ~/.keras/keras.json says.
    "KERAS_BACKEND": "tensorflow",
    # TensorFlow's C++ start-up chatter (CPU feature notes) would bury the output a reader is looking for.
    "TF_CPP_MIN_LOG_LEVEL": "3",
    # On a shared 2-core machine, OpenMP threads that spin while waiting for each other slow PyTorch training 10x;
    # passive waiting changes the speed only, never a result.
    "OMP_WAIT_POLICY": "PASSIVE",
    # TensorFlow splits a sum over its intra-op threads, one per core by default, so a laptop with 8 cores would
    # round differently from the machine that stored the book's outputs. One thread gives the same numbers everywhere
    # (PyTorch gets the same from `utils.seeding.seed_everything`) and is no slower for the book's small networks.
    "TF_NUM_INTRAOP_THREADS": "1",
}


def apply_defaults() -> dict[str, str]:
    """Set each of DEFAULTS that the user has not set; return the values now in force.

    They only take effect for a framework imported afterwards, which is why `utils.setup` is a chapter's first call.
    Chapter: setup_check
    """
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in DEFAULTS}
