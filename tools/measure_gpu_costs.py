"""Measure what dropout costs on this machine's GPU (or CPU) and store the figures, with provenance, as JSON.

Usage: python -m tools.measure_gpu_costs OUT.json [--device cuda] [--log2-sizes 20 28] [--batch-sizes 128 4096]
       [--widths 784 1024 1024 1024 10] [--repeats 50]      (the defaults shown; --device defaults to cpu without a GPU)
Kernels: a copy, F.dropout and a naive mask-and-multiply on 2^20 ... 2^28 elements in float32 and bfloat16.
MLP: one SGD step of a 784-1024-1024-1024-10 MLP with and without dropout. The file is replaced atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from utils.costs import MIN_SAMPLE_S, check_device, kernel_costs, mlp_step_overhead, time_op

KERNEL_DTYPES = (torch.float32, torch.bfloat16)
DROP_RATE = 0.5
WARMUP = 3


def driver_version() -> str | None:
    """Return the NVIDIA driver version reported by nvidia-smi, or None where there is no nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        output = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return output.strip().splitlines()[0] if output.strip() else None


def provenance(device: torch.device, argv: list[str]) -> dict:
    """Describe where and how the figures were measured: hardware, software, date and command, with no hostname."""
    record = {
        "command": shlex.join(["python", "-m", "tools.measure_gpu_costs", *argv]),
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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
    """Median seconds of a one-element copy: the per-kernel floor that the host and the launch path set."""
    x = torch.zeros(1, device=device)
    y = torch.empty_like(x)
    return time_op(lambda: y.copy_(x), device=device, repeats=repeats, warmup=WARMUP)


def write_json_atomic(path: Path, data: dict) -> None:
    """Write `data` as indented JSON to `path` through a temporary file and os.replace, so no reader sees half."""
    fd, tmp = tempfile.mkstemp(suffix=".json.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def summary(data: dict) -> str:
    """A few human-readable lines: bandwidth and ratios per kernel size, and the MLP overhead per batch size."""
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


def main(argv: list[str]) -> int:
    """Run every measurement on the chosen device, write OUT.json atomically and print a summary."""
    parser = argparse.ArgumentParser(prog="python -m tools.measure_gpu_costs", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the JSON file to write")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--log2-sizes", nargs=2, type=int, default=[20, 28], metavar=("MIN", "MAX"),
                        help="kernel sizes 2^MIN ... 2^MAX elements (default: 20 28)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[128, 4096], help="MLP batch sizes")
    parser.add_argument("--widths", nargs="+", type=int, default=[784, 1024, 1024, 1024, 10],
                        help="MLP layer widths, inputs to classes")
    parser.add_argument("--repeats", type=int, default=50, help="timed samples per median (default: 50)")
    args = parser.parse_args(argv)
    try:
        device = check_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    low, high = args.log2_sizes
    if not 0 <= low <= high:
        parser.error(f"--log2-sizes needs 0 <= MIN <= MAX, got {low} {high}")
    timing = {"repeats": args.repeats, "warmup": WARMUP}
    data = {
        "description": "What dropout costs in time, measured by utils.costs: median seconds per call of a copy "
                       "(y.copy_(x)), F.dropout(x, p, training=True) and a naive x * (rand_like(x) >= p) / (1 - p) "
                       "on 1-D tensors, and of one SGD training step of a ReLU MLP with and without dropout after "
                       "each hidden layer. Ratios divide by the copy's time; copy_bytes_per_s counts read + write; "
                       "overhead = with / without - 1. tiny_copy_s, a one-element copy, is the per-kernel floor set "
                       "by the host and the launch path: a step costing a few dozen such floors is host-bound.",
        "provenance": provenance(device, argv),
        "settings": timing | {"min_sample_s": MIN_SAMPLE_S, "drop_rate": DROP_RATE},
        "tiny_copy_s": tiny_copy_seconds(device, repeats=args.repeats),
        "kernels": [kernel_costs(2**k, dtype, device, drop_rate=DROP_RATE, **timing)
                    for dtype in KERNEL_DTYPES for k in range(low, high + 1)],
        "mlp_steps": [mlp_step_overhead(batch, device, widths=args.widths, drop_rate=DROP_RATE, **timing)
                      for batch in args.batch_sizes],
    }
    write_json_atomic(args.out, data)
    print(summary(data))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
