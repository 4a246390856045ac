"""The environment variables the book's outputs depend on, set by `utils.setup` before any framework is imported."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

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


def import_quietly(module: str) -> None:
    """Import `module` (if installed) with the process's native stderr muted, then restore it.

    TensorFlow's C++ start-up notes (about absl logging and oneDNN) are written straight to file descriptor 2 before
    TF_CPP_MIN_LOG_LEVEL is read, so they would land in a notebook's first output. Python errors still raise.
    Chapter: setup_check
    """
    if module in sys.modules or importlib.util.find_spec(module) is None:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            importlib.import_module(module)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
