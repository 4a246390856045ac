"""Compare the PNG figures of a re-executed notebook cell with the stored ones (nbval skips images)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

# A pixel "differs" when a channel moves by more than this many levels (of 255): anti-aliasing noise from
# sub-pixel shifts stays below it, a moved line, bar or marker does not.
PIXEL_THRESHOLD = 64
# The stored and the fresh figure match when at most this fraction of pixels differ.
MAX_DIFFERING_FRACTION = 0.001
# Where a cell's PNG figures live: shown directly, or recorded by myst_nb.glue(..., display=False).
PNG_KEYS = ("image/png", "application/papermill.record/image/png")


def _pngs(outputs: Sequence[Any]) -> list[str]:
    """Return the base64 PNG payloads of a cell's outputs, shown or glued, in order."""
    return [out["data"][key] for out in outputs for key in PNG_KEYS if key in out.get("data", {})]


def _pixels(payload: str) -> np.ndarray:
    """Decode a base64 PNG into an RGBA uint8 array."""
    data = payload if isinstance(payload, str) else "".join(payload)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGBA"))


def differing_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels where any channel of two same-sized images differs by more than PIXEL_THRESHOLD."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1)
    return float((diff > PIXEL_THRESHOLD).mean())


def compare_pngs(fresh: Sequence[Any], stored: Sequence[Any]) -> list[str]:
    """Return a description of each mismatch between fresh and stored figures; empty when they match."""
    new, old = _pngs(fresh), _pngs(stored)
    if len(new) != len(old):
        return [f"the cell now draws {len(new)} figure(s); the stored outputs hold {len(old)}"]
    problems = []
    for index, (a, b) in enumerate(zip(new, old), start=1):
        pa, pb = _pixels(a), _pixels(b)
        if pa.shape != pb.shape:
            problems.append(f"figure {index}: size {pa.shape[1]}x{pa.shape[0]} now, {pb.shape[1]}x{pb.shape[0]} stored")
            continue
        fraction = differing_fraction(pa, pb)
        if fraction > MAX_DIFFERING_FRACTION:
            problems.append(f"figure {index}: {fraction:.2%} of pixels differ from the stored figure "
                            f"(allowed {MAX_DIFFERING_FRACTION:.2%})")
    return problems
