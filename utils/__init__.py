"""Shared, tested helpers for the Dropout in Depth chapters, assignments and tests.

`utils/README.md` maps every module to the chapters that use it. Importing this package imports no framework;
a chapter's first call, ``rng = utils.setup(seed=0)``, sets the environment, seeds every framework and applies the
book's figure style.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def setup(seed: int = 0, *, torch_threads: int | None = 1, deterministic: bool = True) -> np.random.Generator:
    """Prepare a chapter: environment defaults, every framework seeded, the figure style; return a NumPy Generator.

    Call it first, before Keras, TensorFlow or PyTorch is imported, since their settings are read at import.
    `torch_threads` and `deterministic` are passed to `utils.seeding.seed_everything` (None: PyTorch keeps all its
    CPU threads, for timings). Chapter: setup_check
    """
    from utils.environment import apply_defaults, import_quietly

    settings = apply_defaults()
    if "keras" in sys.modules:
        backend = sys.modules["keras"].backend.backend()
        if backend != settings["KERAS_BACKEND"]:
            raise RuntimeError(f"Keras was imported before utils.setup() and runs on {backend!r}, not "
                               f"{settings['KERAS_BACKEND']!r}: restart the kernel and call utils.setup() first")
    import_quietly("tensorflow")  # before Keras, so that its C++ start-up notes stay out of the chapter
    from utils.plotting import use_book_style
    from utils.seeding import seed_everything

    rng = seed_everything(seed, deterministic=deterministic, torch_threads=torch_threads)
    use_book_style()
    return rng
