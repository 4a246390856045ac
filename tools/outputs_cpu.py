"""Which CPU model a notebook's stored outputs come from, and how outputs stored on another one are compared.

PyTorch's and TensorFlow's CPU kernels (oneDNN, MKL) choose their code by CPU model, so the same seeded network
trained on two CPU models ends a few floating-point roundings apart, and a printed accuracy can move by a digit.
`make notebooks` records in each notebook the CPU model its outputs were stored on. nbval (conftest.py) compares a
notebook's outputs exactly on that CPU model; on another, it compares what each cell outputs (text, a table, a
figure, in which order) but not the content, which may differ in a digit or in the verdict of a borderline interval
that the chapter words from the result. Every cell still runs there, and every assert in it still has to hold.
"""

from __future__ import annotations

import json
import platform
from functools import cache
from pathlib import Path
from typing import Any

METADATA_KEY = "dropout_in_depth"  # the notebook metadata section the book writes
CPU_FIELD = "outputs_cpu"


def cpu_model() -> str:
    """The CPU's model name, as the operating system reports it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def stored_cpu(path: Path) -> str | None:
    """The CPU model recorded in the notebook at `path` as the one its outputs were stored on (None if none)."""
    with open(path, encoding="utf-8") as file:
        metadata = json.load(file).get("metadata", {})
    return metadata.get(METADATA_KEY, {}).get(CPU_FIELD)


def record_cpu(notebook: Any) -> None:
    """Record this machine's CPU model in an nbformat notebook whose outputs it has just produced."""
    notebook.metadata.setdefault(METADATA_KEY, {})[CPU_FIELD] = cpu_model()


def output_kinds(outputs: list[Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    """What a cell's outputs are, without their content: (output type, stream name, MIME types) for each, with
    consecutive pieces of one stream counted once (how many pieces a stream arrives in varies from run to run)."""
    kinds: list[tuple[str, str, tuple[str, ...]]] = []
    for output in outputs:
        kind = (output.get("output_type", ""), output.get("name", ""), tuple(sorted(output.get("data", {}))))
        if not (kind[0] == "stream" and kinds and kinds[-1] == kind):
            kinds.append(kind)
    return kinds
