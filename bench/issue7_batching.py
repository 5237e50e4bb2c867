"""Batching across seeds and settings in the depth, deep-linear and RNN experiments.

Each experiment trains many independent models as one batched model: the seeds of a family
(depth, exploding_rnn) and the whole inits × learning-rates × seeds grid (deep_linear). This
times the batched run against one model's run, and reports how much faster the batch is than
a loop of single runs would be. Prints a table, writes bench/results/issue7_batching.json.
    python bench/issue7_batching.py [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gradfail import registry
from gradfail.experiment import RunContext
from gradfail.experiments.classic import deep_linear, depth, exploding_rnn


def seconds(work, device: torch.device, n_seeds: int) -> float:
    ctx = RunContext(device, seed=0, n_seeds=n_seeds)
    work(ctx)  # warm-up
    start = time.perf_counter()
    work(ctx)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def cases(device: torch.device) -> list[dict]:
    """(name, models in the batch per seed, work(ctx) and the seed counts compared)."""
    depth_config = registry.get("depth").config("default", {"steps": 200, "eval_every": 200})
    net = depth.Net(activation="sigmoid", init="glorot")  # does not train: runs every step
    linear = registry.get("deep_linear").config("default", {"steps": 300})
    one_lr = linear.model_copy(update={"scaled_lrs": [0.05], "inits": ["orthogonal"]})
    rnn = registry.get("exploding_rnn").config("default", {"steps": 30, "lengths": [50]})
    return [
        {"case": "depth: sigmoid, 16 layers, 200 SGD steps", "single": (1, lambda c: depth.train(
            depth_config, net, 16, c)), "batched": (8, lambda c: depth.train(
                depth_config, net, 16, c)), "models": 8},
        {"case": "deep_linear: depth 16, 300 GD steps", "single": (1, lambda c: deep_linear
         .time_to_criterion(one_lr, 16, c)), "batched": (4, lambda c: deep_linear
         .time_to_criterion(linear, 16, c)),
         "models": 4 * len(linear.inits) * len(linear.scaled_lrs)},
        {"case": "exploding_rnn: T = 50, 30 SGD steps", "single": (1, lambda c: exploding_rnn
         .train(rnn, 50, c)), "batched": (4, lambda c: exploding_rnn.train(rnn, 50, c)),
         "models": 4},
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    device = torch.device(parser.parse_args().device)
    rows = []
    for case in cases(device):
        single = seconds(case["single"][1], device, case["single"][0])
        batched = seconds(case["batched"][1], device, case["batched"][0])
        rows.append({"case": case["case"], "models_batched": case["models"],
                     "single_s": single, "batched_s": batched,
                     "batched_over_looped": case["models"] * single / batched})
    out = Path(__file__).parent / "results" / "issue7_batching.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"device": str(device), "threads": torch.get_num_threads(),
                               "torch": torch.__version__, "rows": rows}, indent=2))
    print(f"{'case':<42} {'models':>6} {'one (s)':>8} {'batch (s)':>9} {'vs loop':>8}")
    for row in rows:
        print(f"{row['case']:<42} {row['models_batched']:>6} {row['single_s']:>8.2f} "
              f"{row['batched_s']:>9.2f} {row['batched_over_looped']:>7.1f}x")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
