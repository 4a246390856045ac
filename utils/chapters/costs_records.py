"""Cost records: every GPU (or CPU) measurement of the cost chapter in one JSON-ready dict, with its provenance.

`measure_costs` makes a record on any torch device; `python -m tools.measure_gpu_costs` writes one to a file, which
`load_costs` reads back and checks; `describe_costs` and `plot_kernel_record` show one. The chapter uses the same
functions for the stored H100 record and for a live record on a machine that has a GPU.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes

from utils.chapters.costs import (
    MIN_SAMPLE_S,
    bytes_floor_ratio,
    kernel_costs,
    mlp_step_overhead,
    plot_time_ratios,
    time_op,
)
from utils.checks import check_count
from utils.devices import check_device
from utils.plotting import PALETTE
from utils.store import DATA_DIR

H100_COSTS = DATA_DIR / "gpu_costs_h100.json"  # measured by tools.measure_gpu_costs
KERNEL_DTYPES = (torch.float32, torch.bfloat16)
DROP_RATE = 0.5
WARMUP = 3
DESCRIPTION = (
    "What dropout costs in time, measured by utils.chapters.costs: median seconds per call of a copy (y.copy_(x)), "
    "F.dropout(x, p, training=True) and a naive x * (rand_like(x) >= p) / (1 - p) on 1-D tensors, and of one SGD "
    "training step of a ReLU MLP with and without dropout after each hidden layer. Ratios divide by the copy's time; "
    "copy_bytes_per_s counts read + write; overhead = with / without - 1. tiny_copy_s, a one-element copy, is the "
    "per-kernel floor set by the host and the launch path: a step costing a few dozen such floors is host-bound.")

COST_FILE_KEYS = ("description", "provenance", "settings", "tiny_copy_s", "kernels", "mlp_steps")
KERNEL_KEYS = ("n_elements", "dtype", "device", "copy_s", "dropout_s", "naive_s", "dropout_over_copy",
               "naive_over_copy", "copy_bytes_per_s")
MLP_KEYS = ("batch_size", "widths", "device", "step_s_without_dropout", "step_s_with_dropout", "overhead")


def driver_version() -> str | None:
    """Return the NVIDIA driver version reported by nvidia-smi, or None where there is no nvidia-smi.

    Chapter: costs
    """
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        output = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return output.strip().splitlines()[0] if output.strip() else None


def provenance(device: torch.device, command: str) -> dict:
    """Describe where and how figures were measured: hardware, software, date and `command`, with no hostname.

    Chapter: costs
    """
    record = {
        "command": command,
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": str(device),
        "device_name": platform.processor() or platform.machine(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "driver_version": driver_version() if device.type == "cuda" else None,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        record |= {"device_name": torch.cuda.get_device_name(device),
                   "compute_capability": f"{properties.major}.{properties.minor}",
                   "device_memory_bytes": properties.total_memory}
    return record


def tiny_copy_seconds(device: torch.device, *, repeats: int) -> float:
    """Median seconds of a one-element copy: the per-kernel floor that the host and the launch path set.

    Chapter: costs
    """
    x = torch.zeros(1, device=device)
    y = torch.empty_like(x)
    return time_op(lambda: y.copy_(x), device=device, repeats=repeats, warmup=WARMUP)


def measure_costs(device: str | torch.device, *, log2_sizes: tuple[int, int] = (20, 28),
                  batch_sizes: Sequence[int] = (128, 4096), widths: Sequence[int] = (784, 1024, 1024, 1024, 10),
                  repeats: int = 50, command: str = "utils.chapters.costs_records.measure_costs") -> dict:
    """Measure a cost record on `device`: kernels on 2^MIN ... 2^MAX elements in float32 and bfloat16, MLP steps.

    The record has the keys COST_FILE_KEYS, as `load_costs` expects; `command` is stored in its provenance.
    Chapter: costs
    """
    device = check_device(device)
    if isinstance(log2_sizes, (str, bytes)) or not isinstance(log2_sizes, Sequence) or len(log2_sizes) != 2:
        raise ValueError(f"log2_sizes must be a pair (MIN, MAX) of exponents, got {log2_sizes!r}")
    low, high = (check_count(size, "log2_sizes", minimum=0) for size in log2_sizes)
    if low > high:
        raise ValueError(f"log2_sizes needs MIN <= MAX, got {log2_sizes}")
    repeats = check_count(repeats, "repeats")
    timing = {"repeats": repeats, "warmup": WARMUP}
    return {
        "description": DESCRIPTION,
        "provenance": provenance(device, command),
        "settings": timing | {"min_sample_s": MIN_SAMPLE_S, "drop_rate": DROP_RATE},
        "tiny_copy_s": tiny_copy_seconds(device, repeats=repeats),
        "kernels": [kernel_costs(2**k, dtype, device, drop_rate=DROP_RATE, **timing)
                    for dtype in KERNEL_DTYPES for k in range(low, high + 1)],
        "mlp_steps": [mlp_step_overhead(batch, device, widths=widths, drop_rate=DROP_RATE, **timing)
                      for batch in batch_sizes],
    }


def load_costs(path: str | Path) -> dict:
    """Read a cost file written by `python -m tools.measure_gpu_costs` and check that it has what the chapter plots.

    Chapter: costs
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no cost file at {path}; write one with `python -m tools.measure_gpu_costs {path}`")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
    for keys, rows, where in ((COST_FILE_KEYS, [data], "the file"), (KERNEL_KEYS, data.get("kernels", []), "a kernel"),
                              (MLP_KEYS, data.get("mlp_steps", []), "an MLP step")):
        for row in rows:
            missing = [key for key in keys if key not in row]
            if missing:
                raise ValueError(f"{path}: {where} row lacks {missing}; was it written by tools.measure_gpu_costs?")
    if not data["kernels"] or not data["mlp_steps"]:
        raise ValueError(f"{path} has no kernel or no MLP measurements")
    return data


def describe_costs(data: Mapping) -> str:
    """A few human-readable lines: bandwidth and ratios per kernel size, and the MLP overhead per batch size.

    Chapter: costs
    """
    source = data["provenance"]
    lines = [f"{source['device_name']} ({source['device']}), torch {source['torch_version']}, "
             f"CUDA {source['cuda_version']}, driver {source['driver_version']}",
             f"one-element copy (per-kernel floor): {data['tiny_copy_s'] * 1e6:.1f} us",
             f"{'dtype':>9} {'elements':>9} {'copy GB/s':>10} {'dropout / copy':>15} {'naive / copy':>13}"]
    for row in data["kernels"]:
        lines.append(f"{row['dtype']:>9} {'2^' + str(row['n_elements'].bit_length() - 1):>9} "
                     f"{row['copy_bytes_per_s'] / 1e9:10.1f} {row['dropout_over_copy']:15.2f} "
                     f"{row['naive_over_copy']:13.2f}")
    for row in data["mlp_steps"]:
        lines.append(f"MLP {'-'.join(map(str, row['widths']))} batch {row['batch_size']}: step "
                     f"{row['step_s_without_dropout'] * 1e3:.3f} ms without dropout, "
                     f"{row['step_s_with_dropout'] * 1e3:.3f} ms with: {row['overhead']:+.1%}")
    return "\n".join(lines)


def plot_kernel_record(ax: Axes, data: Mapping, *, title: str) -> Axes:
    """Plot a record's kernels as time / copy against size: F.dropout and naive, float32 solid, bfloat16 dashed.

    The dotted lines are the bytes floors (`utils.chapters.costs.bytes_floor_ratio`) of a one-byte mask in each dtype.
    Chapter: costs
    """
    curves, styles, floors = {}, {}, {}
    sizes = None
    for dtype, linestyle in (("float32", "-"), ("bfloat16", "--")):
        rows = [row for row in data["kernels"] if row["dtype"] == dtype]
        if not rows:
            continue
        row_sizes = [row["n_elements"] for row in rows]
        if sizes is not None and row_sizes != sizes:
            raise ValueError("the record's float32 and bfloat16 kernels were measured at different sizes")
        sizes = row_sizes
        curves[f"F.dropout, {dtype}"] = [row["dropout_over_copy"] for row in rows]
        curves[f"naive, {dtype}"] = [row["naive_over_copy"] for row in rows]
        styles[f"F.dropout, {dtype}"] = {"color": PALETTE[1], "marker": "D", "linestyle": linestyle}
        styles[f"naive, {dtype}"] = {"color": PALETTE[3], "marker": "o", "linestyle": linestyle}
        floors[f"bytes floor, {dtype}"] = bytes_floor_ratio(torch.empty(0, dtype=getattr(torch, dtype)).element_size())
    if sizes is None:
        raise ValueError("the record has no float32 or bfloat16 kernels to plot")
    return plot_time_ratios(ax, sizes, curves, floors=floors, styles=styles, title=title)
