"""Parity training throughput: 1 vs 8 seeds, batched vs a loop of single runs, against matmul.

Prints a table and writes bench/results/parity_throughput.json. Usage:
    python bench/parity_throughput.py [--steps 2000] [--dims 5 10 30] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from gradfail import registry
from gradfail.experiment import RunContext
from gradfail.experiments.paper.parity import train
from gradfail.maths.timing import matmul_gflops, synchronize

PARITY = registry.get("parity")


def training_seconds(d: int, seeds: int, steps: int, device: torch.device) -> float:
    config = PARITY.config("quick", {"dims": [d], "steps": [steps]})
    train(config, d, RunContext(device, seed=0, n_seeds=seeds))  # warm-up
    start = time.perf_counter()
    train(config, d, RunContext(device, seed=0, n_seeds=seeds))
    synchronize(device)
    return time.perf_counter() - start


def flops_per_seed_step(d: int, batch: int = 128) -> float:
    """Forward 2BdH + 2BH, backward 2BdH (W1) + 4BH (w2 and the hidden layer's input grad)."""
    hidden = 10 * d
    return 4 * batch * d * hidden + 6 * batch * hidden


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--dims", type=int, nargs="+", default=[5, 10, 30])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    peak = matmul_gflops(device)
    rows = []
    for d in args.dims:
        single = training_seconds(d, 1, args.steps, device)
        batched = training_seconds(d, 8, args.steps, device)
        looped = 8 * single  # a loop of 8 single runs costs 8 single runs
        gflops = 8 * args.steps * flops_per_seed_step(d) / batched / 1e9
        rows.append({
            "d": d,
            "steps_per_s_1_seed": args.steps / single,
            "steps_per_s_8_seeds_batched": args.steps / batched,
            "seed_steps_per_s_8_looped": 8 * args.steps / looped,
            "seed_steps_per_s_8_batched": 8 * args.steps / batched,
            "batched_over_looped": looped / batched,
            "gflops_batched": gflops,
            "fraction_of_matmul": gflops / peak,
        })
    report = {"device": str(device), "processor": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "matmul_gflops": peak, "steps": args.steps, "rows": rows}
    out = Path(__file__).parent / "results" / "parity_throughput.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"plain 1024² matmul: {peak:.1f} GFLOP/s ({report['threads']} threads, {device})")
    print(f"{'d':>3} {'1 seed st/s':>12} {'8 batched st/s':>15} {'batched/looped':>15} "
          f"{'GFLOP/s':>8} {'of matmul':>9}")
    for row in rows:
        print(f"{row['d']:>3} {row['steps_per_s_1_seed']:>12.0f} "
              f"{row['steps_per_s_8_seeds_batched']:>15.0f} {row['batched_over_looped']:>14.1f}x "
              f"{row['gflops_batched']:>8.1f} {row['fraction_of_matmul']:>9.1%}")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
