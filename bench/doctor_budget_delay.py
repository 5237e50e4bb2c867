"""What an overhead budget costs in detection: the doctor's benchmark of independent programs
(gradfail.doctor.bench) run twice, at the doctor's defaults and under `--overhead 0.1`, side by
side in one run of this script (two programs at a time, one thread each; no plain runs: this
measures verdicts, not time). For every program whose failure both runs name, the delay is the
budgeted onset minus the default onset, in steps; and for both runs, the share of programs whose
main verdict is their label. Writes bench/results/doctor_budget_delay.json.
    python bench/doctor_budget_delay.py [--split all|dev|heldout|fresh] [--budget 0.1] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gradfail.doctor import bench

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="all", choices=bench.SPLITS)
    parser.add_argument("--budget", type=float, default=0.1)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    chosen = bench.programs(args.split)
    runs = {name: bench.evaluate_all(chosen, args.jobs, overhead=False, budget=budget)
            for name, budget in (("defaults", None), ("budget", args.budget))}
    found = {}
    for name, outcomes in runs.items():
        right = [o["named"] == o["label"] for o in outcomes]
        found[name] = {"named_right": float(np.mean(right)), "programs": len(outcomes)}
        print(f"{name}: main verdict = label on {sum(right)} of {len(right)} programs")
    delays = [b["onset"] - d["onset"] for d, b in zip(runs["defaults"], runs["budget"],
                                                      strict=True)
              if d["label"] != "healthy" and d["onset"] is not None and b["onset"] is not None]
    lost = sum(d["label"] != "healthy" and d["onset"] is not None and b["onset"] is None
               for d, b in zip(runs["defaults"], runs["budget"], strict=True))
    found["delay_steps"] = {"median": float(np.median(delays)) if delays else None,
                            "quartiles": np.percentile(delays, [25, 75]).tolist()
                            if delays else None, "programs": len(delays),
                            "found_by_defaults_only": int(lost)}
    print(f"detection delay under --overhead {args.budget}: median "
          f"{found['delay_steps']['median']} steps (quartiles "
          f"{found['delay_steps']['quartiles']}) over {len(delays)} programs both runs name; "
          f"{lost} named at the defaults only")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "doctor_budget_delay.json").write_text(json.dumps(
        found | {"runs": runs, "split": args.split, "budget": args.budget}, indent=1,
        default=str))


if __name__ == "__main__":
    main()
