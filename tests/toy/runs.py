"""A cheap, deterministic run function for the experiment-store tests: `run(settings, seed) -> metrics`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any


def run(s: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Sleep `s["sleep"]` seconds, then return a value made from the setting and the seed, and a text metric."""
    time.sleep(float(s.get("sleep", 0.0)))
    return {"value": float(s["x"]) * 1000 + seed + float(s.get("offset", 0.0)), "label": f"x{s['x']}-{seed}"}
