"""Time to certify a global optimum against the number of points, and the time-limit behaviour.

The 3-node network (fewest errors, box B = 20) on planted and on random labels, and the 2-unit
ReLU net (hinge loss, box B = 2) on labels from a 2-unit teacher and on random labels, all in
2-D; the issue's target is N = 60 certified in under 60 s here. A solve cut at the limit
reports the best network found and its proven bound, marked not certified. Three instances a
cell, median seconds. Prints a table, writes bench/results/exact_certify.json.
    python bench/exact_certify.py [--limit 60] [--points 10 20 30 40 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from gradfail import registry
from gradfail.exact.program import Certificate
from gradfail.exact.relu import certify_relu, relu_output
from gradfail.exact.threshold import three_node
from gradfail.experiments.exact import three_node as three_node_experiment


def relu_instance(n: int, labelling: str, rng: np.random.Generator):
    """Hinge data in [−1, 1]²: the sign of a 2-unit teacher about its median, or coins."""
    x = rng.uniform(-1, 1, (n, 2))
    if labelling == "random":
        return x, rng.choice([-1.0, 1.0], n)
    teacher = {"w": rng.uniform(-1.5, 1.5, (2, 2)), "b": rng.uniform(-0.5, 0.5, 2), "c": 0.0,
               "s": np.array([1.0, -1.0])}
    output = relu_output(teacher, x)
    return x, np.where(output > np.median(output), 1.0, -1.0)


def solve(problem: str, labelling: str, n: int, seed: int, limit: float) -> Certificate:
    if problem == "3-node":
        config = registry.get("three_node").config("default", {"time_limit": limit})
        x, labels = three_node_experiment.wall_data(config, n, labelling,
                                         torch.Generator().manual_seed(seed))
        return three_node(x, labels, config.box, limit)
    x, labels = relu_instance(n, labelling, np.random.default_rng(seed))
    return certify_relu(x, labels, 2, "hinge", 2.0, limit)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=float, default=60.0)
    parser.add_argument("--points", type=int, nargs="+", default=[10, 20, 30, 40, 60])
    parser.add_argument("--instances", type=int, default=3)
    args = parser.parse_args()
    rows = []
    print(f"{'problem':<8} {'labels':<8} {'N':>4} {'median s':>9} {'certified':>9} "
          f"{'worst gap':>10}")
    for problem, labelling in [("3-node", "planted"), ("3-node", "random"),
                               ("relu-2", "planted"), ("relu-2", "random")]:
        for n in args.points:
            found = [solve(problem, labelling, n, seed, args.limit)
                     for seed in range(args.instances)]
            row = {"problem": problem, "labels": labelling, "points": n,
                   "seconds": [f.seconds for f in found],
                   "certified": sum(f.certified for f in found),
                   "gaps": [f.gap for f in found], "limit_s": args.limit}
            rows.append(row)
            print(f"{problem:<8} {labelling:<8} {n:>4} {statistics.median(row['seconds']):>9.2f} "
                  f"{row['certified']:>6}/{len(found)} {max(row['gaps']):>10.3g}", flush=True)
    out = Path(__file__).parent / "results" / "exact_certify.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": rows}, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
