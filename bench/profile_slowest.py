"""Where the slowest experiments spend their time: per part (from a store's default runs) and
per function (cProfile of a quick run in this process, one thread), for the five slowest at
default scale (or those named). Writes bench/results/profile_slowest.json.
    python bench/profile_slowest.py [NAME ...] [--store results/gradfail.sqlite] [--top 8]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
from pathlib import Path

import torch

from gradfail import registry
from gradfail.runner import run_experiment
from gradfail.store import Store

RESULTS = Path(__file__).parent / "results"


def parts_of(store: Store, name: str) -> list[tuple[str, float]]:
    """The parts of the experiment's latest done default run at seed 0, longest first."""
    runs = [r for r in store.runs(name) if r["status"] == "done" and r["scale"] == "default"
            and r["seed"] == 0]
    if not runs:
        return []
    parts = store.parts(runs[-1]["id"])
    return sorted(((p["key"], p["wall_s"]) for p in parts), key=lambda part: -part[1])


def profiled(name: str, scratch: Path, top: int) -> list[tuple[str, float, int]]:
    """(function, own seconds, calls) of a quick run, the `top` heaviest by own time."""
    experiment = registry.get(name)
    profile = cProfile.Profile()
    profile.enable()
    run_experiment(experiment, experiment.config("quick"), scale="quick",
                   store=Store(scratch / f"{name}.sqlite"), n_seeds=experiment.seeds["quick"])
    profile.disable()
    stats = pstats.Stats(profile).stats
    rows = [(f"{Path(file).name}:{line} {function}", own, calls)
            for (file, line, function), (calls, _, own, _, _) in stats.items()]
    return sorted(rows, key=lambda row: -row[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--store", type=Path, default=Path("results/gradfail.sqlite"))
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    store = Store(args.store, readonly=True)
    names = args.names or [r["experiment"] for r in sorted(
        (r for r in store.runs() if r["status"] == "done" and r["scale"] == "default"
         and r["seed"] == 0), key=lambda r: -r["wall_s"])][:5]
    scratch = RESULTS / "profile_stores"
    scratch.mkdir(parents=True, exist_ok=True)
    found = {}
    for name in names:
        parts, functions = parts_of(store, name), profiled(name, scratch, args.top)
        total = sum(wall for _, wall in parts) or float("nan")
        print(f"\n{name}: default parts ({total:.0f} s in all)")
        for key, wall in parts[:args.top]:
            print(f"  {wall:7.1f} s  {100 * wall / total:4.0f}%  {key}")
        print(f"{name}: quick run, heaviest functions by own time (one thread)")
        for function, own, calls in functions:
            print(f"  {own:7.2f} s  {calls:9,d} calls  {function}")
        found[name] = {"parts": parts, "functions": functions}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "profile_slowest.json").write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
