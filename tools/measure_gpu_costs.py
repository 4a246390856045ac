"""Measure what dropout costs on this machine's GPU (or CPU) and store the figures, with provenance, as JSON.

Usage: python -m tools.measure_gpu_costs OUT.json [--device cuda] [--log2-sizes 20 28] [--batch-sizes 128 4096]
       [--widths 784 1024 1024 1024 10] [--repeats 50]      (the defaults shown; --device defaults to cpu without a GPU)
Kernels: a copy, F.dropout and a naive mask-and-multiply on 2^20 ... 2^28 elements in float32 and bfloat16.
MLP: one SGD step of a 784-1024-1024-1024-10 MLP with and without dropout. The file is replaced atomically.
The measuring is `utils.chapters.costs_records.measure_costs`, which the chapter "What dropout costs" also runs live
on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

import torch

from utils.chapters.costs_records import describe_costs, measure_costs
from utils.devices import check_device


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
    if not args.out.parent.is_dir():
        parser.error(f"the folder of {args.out} does not exist")
    data = measure_costs(device, log2_sizes=(low, high), batch_sizes=args.batch_sizes, widths=args.widths,
                         repeats=args.repeats, command=shlex.join(["python", "-m", "tools.measure_gpu_costs", *argv]))
    write_json_atomic(args.out, data)
    print(describe_costs(data))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
