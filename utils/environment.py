"""The environment variables the book's outputs depend on, set by `utils.setup` before any framework is imported."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
from pathlib import Path

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


ROOT = Path(__file__).resolve().parent.parent  # the book's folder in a checkout; site-packages when installed
DISTRIBUTION = "dropout-in-depth"  # the package's name in pyproject.toml
PINS_EXTRA = "pins"  # the extra into which pyproject.toml copies requirements.txt
_PIN = re.compile(r"^([A-Za-z0-9][\w.-]*)==([\w.+!-]+)")


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def book_pins() -> dict[str, str]:
    """The book's exact versions, package name to version: from requirements.txt, or the installed package's metadata.

    A checkout reads requirements.txt. An installed copy of the package (`pip install` without -e, as on Colab) has no
    requirements.txt; pyproject.toml copies the same lines into its metadata, as the extra `pins`. Chapter: setup_check
    """
    if (ROOT / "requirements.txt").is_file() and (ROOT / "pyproject.toml").is_file():
        lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    else:
        try:
            requires = importlib.metadata.requires(DISTRIBUTION) or []
        except importlib.metadata.PackageNotFoundError:
            raise FileNotFoundError(f"neither requirements.txt beside utils/ nor an installed {DISTRIBUTION} "
                                    "package: run the book from its folder or install its package") from None
        lines = [line for line in requires if f'extra == "{PINS_EXTRA}"' in line]
    pins = {_normalised(match[1]): match[2] for match in map(_PIN.match, lines) if match}
    if not pins:
        raise ValueError(f"no exact pins (name==version) found for {DISTRIBUTION}: reinstall its package")
    return pins


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
