"""`gradfail reproduce --jobs N`: the quick reproduce into an empty store, in turn in one
process (two torch threads) and side by side in N worker processes (one thread each), in the
same run of the benchmark, with their verdicts compared. Issue target: ≥ 1.6× with --jobs 2.
Writes bench/results/reproduce_jobs.json; its stores (runs with measured wall times) feed
bench/calibrate_costs.py.
    python bench/reproduce_jobs.py [--scale quick] [--jobs 2] [--out bench/results/stores]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def reproduce(scale: str, jobs: int, store: Path) -> tuple[float, list[dict]]:
    """Wall seconds of one reproduce (setup excluded) and its runs as `--json` gives them."""
    if store.parent.exists():
        shutil.rmtree(store.parent)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gradfail.cli", "reproduce", "--scale", scale,
                           "--jobs", str(jobs), "--store", str(store), "--json"],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"reproduce --jobs {jobs} failed: {done.stderr.strip().splitlines()[-1:]}")
    return seconds, json.loads(done.stdout)["runs"]


def verdicts(runs: list[dict]) -> dict[str, list[str]]:
    return {run["experiment"]: [claim["verdict"] for claim in run["claims"]] for run in runs}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="quick")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "stores")
    args = parser.parse_args()
    in_turn_s, in_turn = reproduce(args.scale, 1, args.out / "jobs1" / "gradfail.sqlite")
    side_s, side = reproduce(args.scale, args.jobs, args.out / f"jobs{args.jobs}" /
                             "gradfail.sqlite")
    a, b = verdicts(in_turn), verdicts(side)
    differ = sorted(name for name in a if a[name] != b.get(name))
    found = {"scale": args.scale, "jobs": args.jobs, "in_turn_s": in_turn_s,
             "side_by_side_s": side_s, "speedup": in_turn_s / side_s,
             "verdicts_differ": differ,
             "runs_in_turn_s": {run["experiment"]: run["wall_s"] for run in in_turn},
             "runs_side_by_side_s": {run["experiment"]: run["wall_s"] for run in side}}
    print(f"reproduce --scale {args.scale}: --jobs 1 {in_turn_s:.0f} s, --jobs {args.jobs} "
          f"{side_s:.0f} s: {found['speedup']:.2f}x; verdicts that differ: {differ or 'none'} "
          "(wall-clock claims may)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reproduce_jobs.json").write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
