"""Throughput of the asynchronous engines: Ray's parameter server and Hogwild!.

Ray: server updates/s with 1, 2 and 4 workers on a 100k-parameter model whose gradient costs
nothing, so the time per update is the engine's own overhead (issue target ≤ 5 ms). Hogwild!:
samples/s of sparse logistic regression on 1 and 2 processes (target ≥ 1.5×). Prints a table,
writes bench/results/async_throughput.json.
    python bench/async_throughput.py [--updates 500]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gradfail.distributed import hogwild, ray_server
from gradfail.distributed.simulator import Quadratic


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--parameters", type=int, default=100_000)
    args = parser.parse_args()
    rows = []
    initial = np.ones((1, args.parameters), dtype=np.float32)
    ray_server.start()
    ray_server.run_async(initial, Quadratic(args.parameters), 1, 20, lr=0.01)  # warm-up
    for workers in (1, 2, 4):
        found = ray_server.run_async(initial, Quadratic(args.parameters), workers, args.updates,
                                     lr=0.01)
        rows.append({"engine": "ray", "workers": workers, "updates_per_s":
                     args.updates / found.seconds, "ms_per_update":
                     1e3 * found.seconds / args.updates,
                     "mean_staleness": float(np.mean(found.staleness))})
        print(f"ray   {workers} workers: {rows[-1]['updates_per_s']:7.1f} updates/s, "
              f"{rows[-1]['ms_per_update']:.2f} ms/update, mean τ "
              f"{rows[-1]['mean_staleness']:.2f}", flush=True)
    problem = hogwild.sparse_problem(200_000, 100_000, 20)
    for processes in (1, 2):
        found = hogwild.hogwild(problem, processes, epochs=2)
        rows.append({"engine": "hogwild", **found})
        print(f"hogwild {processes} process(es): {found['samples_per_s']:,.0f} samples/s, "
              f"loss {found['loss']:.4f}", flush=True)
    out = Path(__file__).parent / "results" / "async_throughput.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"parameters": args.parameters, "rows": rows}, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
