"""Run the paper's MNIST experiments at a chosen scale and write their tables: `python -m tools.paper_scale`.

Usage:
    DROPOUT_IN_DEPTH_SCALE=paper python -m tools.paper_scale            # the paper-scale run (GPU when present)
    python -m tools.paper_scale --scale laptop --only table2            # the chapters' laptop scale
    python -m tools.paper_scale --smoke                                 # the same code path, tiny, in seconds

It writes, into --out (default _build/paper_scale/<scale>/): table2.csv and table2.md (the Table 2 analogue, mean ±
std over seeds beside the paper's numbers), table2_runs.csv (every seed), table2_search.csv (the learning-rate search
on the validation split), and for the sweeps rate.csv/rate.md (Fig. 9) and size.csv/size.md (Fig. 10).
Full MNIST is read from data/mnist.npz or ~/.keras/datasets/mnist.npz; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from tools.toc import ROOT
from utils.chapters.paper import (
    RATE_MODES,
    SCALE_ENV,
    SCALES,
    SMOKE,
    get_scale,
    load_data,
    pick_device,
    rate_sweep,
    run_table2,
    size_sweep,
    sweep_table,
    table2_summary,
    write_table,
)
from utils.seeding import seed_everything

EXPERIMENTS: tuple[str, ...] = ("table2", "rate", "size")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m tools.paper_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=SCALES, default=None,
                        help=f"the configuration to run (default: ${SCALE_ENV}, else laptop)")
    parser.add_argument("--only", choices=EXPERIMENTS, action="append",
                        help="run only this experiment (repeat the flag for several); default: all three")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the tables (default: _build/paper_scale/<scale>, or .../smoke)")
    parser.add_argument("--smoke", action="store_true",
                        help="shrink every size to a few units, epochs and examples: checks the code path only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen experiments at the chosen scale and write their tables; return an exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    scale = get_scale(args.scale, **(SMOKE if args.smoke else {}))
    out = args.out or ROOT / "_build" / "paper_scale" / ("smoke" if args.smoke else scale.name)
    device = pick_device(scale)
    print(scale.describe())
    print(f"device: {device}; tables go to {out}", flush=True)
    seed_everything(0, torch_threads=None)  # the scale's own `threads` setting decides
    data = load_data(scale)
    print(f"data: {data.source}; sizes {data.sizes}", flush=True)
    for experiment in args.only or EXPERIMENTS:
        start = time.perf_counter()
        if experiment == "table2":
            runs, search = run_table2(scale, data, device=device)
            summary = table2_summary(runs)
            written = write_table(summary, out, "table2")
            runs.to_csv(out / "table2_runs.csv", index=False)
            search.to_csv(out / "table2_search.csv", index=False)
            print(summary.to_markdown())
        elif experiment == "rate":
            errors = rate_sweep(scale, data, device=device)
            table = sweep_table(scale.rates, {mode: errors[mode]["test"] for mode in RATE_MODES}, setting="drop rate")
            written = write_table(table, out, "rate")
            print(table.to_markdown())
        else:
            errors = size_sweep(scale, data, device=device)
            table = sweep_table(scale.sizes, errors, setting="training examples")
            written = write_table(table, out, "size")
            print(table.to_markdown())
        print(f"{experiment}: {time.perf_counter() - start:.0f} s; wrote {', '.join(str(p) for p in written)}",
              flush=True)
    return 0


if __name__ == "__main__":
    pd.set_option("display.width", 160)
    sys.exit(main())
