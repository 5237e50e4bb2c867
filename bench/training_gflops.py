"""Achieved GFLOP/s of the three heaviest training loops, against this machine's float32 matmul
peak measured in the same process.

The three: `end_to_end` (the paper's §3 ConvNets and the SNR study), `designed_filters` (the
convolutional nets with designed first layers) and `optimizers` (the optimiser comparison), the
training experiments that take longest at default scale. Each runs twice at the chosen scale
(quick by default) with one torch thread: once under torch's FlopCounterMode, which counts the
floating-point operations of every matmul and convolution, forward and backward
(torch.utils.flop_counter; element-wise work is not counted, so the figure is a lower bound on
the arithmetic done), and once plain, timed. Achieved GFLOP/s = counted FLOPs / plain wall
time; the fraction of the matmul peak says how far the loop is from arithmetic-bound (the rest
is per-operation overhead, memory traffic and Python). Writes bench/results/training_gflops_SCALE.json.
    python bench/training_gflops.py [--scale quick|default] [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from gradfail import registry
from gradfail.maths.timing import matmul_gflops
from gradfail.runner import run_experiment
from gradfail.store import Store

HEAVIEST = ("end_to_end", "designed_filters", "optimizers")
RESULTS = Path(__file__).parent / "results"


def run(name: str, scale: str, scratch: Path, tag: str) -> float:
    """One run into its own store (so none is skipped as already stored); its wall time."""
    experiment = registry.get(name)
    start = time.perf_counter()
    run_experiment(experiment, experiment.config(scale), scale=scale,
                   store=Store(scratch / f"{name}-{tag}.sqlite"),
                   n_seeds=experiment.seeds[scale])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*", default=list(HEAVIEST))
    parser.add_argument("--scale", choices=("quick", "default"), default="quick")
    args = parser.parse_args()
    torch.set_num_threads(1)
    peak = matmul_gflops("cpu")
    print(f"float32 1024² matmul, one thread: {peak:.1f} GFLOP/s")
    found = {"matmul_gflops": peak, "scale": args.scale, "loops": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.names:
            counter = FlopCounterMode(display=False)
            with counter:
                run(name, args.scale, Path(scratch), "counted")
            wall = run(name, args.scale, Path(scratch), "timed")
            gflops = counter.get_total_flops() / wall / 1e9
            found["loops"][name] = {"gflop": counter.get_total_flops() / 1e9, "wall_s": wall,
                                    "gflops": gflops, "of_matmul": gflops / peak}
            print(f"{name}: {counter.get_total_flops() / 1e9:,.1f} GFLOP in {wall:.1f} s = "
                  f"{gflops:.2f} GFLOP/s, {gflops / peak:.1%} of the matmul peak", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"training_gflops_{args.scale}.json").write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
