"""Progress bars for learners, and none in the book's stored outputs, where they would only be noise."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")

# The book's tooling (make notebooks, the tests) sets this, so stored and re-run outputs hold no timings.
QUIET_ENV = "DROPOUT_IN_DEPTH_NO_PROGRESS"


def progress(iterable: Iterable[T], **kwargs: Any) -> Iterable[T]:
    """Wrap `iterable` in a tqdm progress bar, unless QUIET_ENV is set to 1.

    Chapters: mc_dropout, tutorials_offline
    """
    from tqdm.auto import tqdm  # imported here so that modules using utils.training need tqdm only to train

    return tqdm(iterable, disable=os.environ.get(QUIET_ENV) == "1", **kwargs)
