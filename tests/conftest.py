"""Fixtures shared by the unit tests."""

import numpy as np
import pytest


@pytest.fixture
def blobs():
    """Return a maker of three well-separated Gaussian classes: blobs(n, n_features, seed) -> (x, y)."""

    def make(n: int = 400, n_features: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 3, n)
        x = rng.normal(size=(n, n_features)).astype(np.float32) + 3.0 * np.eye(3, n_features)[y]
        return x, y

    return make
