"""Fixtures shared by the tests."""

from pathlib import Path

import numpy as np
import pytest

from tools.build_site import HTML_DIR
from tools.sitecheck import build_once


@pytest.fixture
def blobs():
    """Return a maker of three well-separated Gaussian classes: blobs(n, n_features, seed) -> (x, y)."""

    def make(n: int = 400, n_features: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 3, n)
        x = rng.normal(size=(n, n_features)).astype(np.float32) + 3.0 * np.eye(3, n_features)[y]
        return x, y

    return make


@pytest.fixture(scope="session")
def site(request, tmp_path_factory) -> Path:
    """The built site's HTML folder, built once per test session with warnings as errors.

    Built only when a selected test asks for it (not autouse), and a test that asks for it is in the `site` tier
    (conftest.py), so `make test-fast` (-m unit) never builds the site. In a run spread over several workers
    (pytest-xdist), they share one build through the run's temporary folder, the parent of each worker's own."""
    worker = hasattr(request.config, "workerinput")
    result = build_once(tmp_path_factory.getbasetemp().parent if worker else None)
    assert result.returncode == 0, (
        f"site build failed (warnings are errors):\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    return HTML_DIR
