"""The cost model's calibration (gradfail.costs) from stores of finished runs on this machine:
each experiment's fixed seconds and seconds per unit of work, fitted to its runs' wall times,
written to src/gradfail/calibration.json; then each run's estimate beside its measured time.
    python bench/calibrate_costs.py STORE [STORE ...] [--machine "2-core ..."] [--only NAME ...]
(--only: refit those experiments, keep every other's fit as it is.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

from gradfail import costs, registry
from gradfail.store import Store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--machine", default=f"{os.cpu_count()} cores, "
                        f"{platform.processor() or platform.machine()}")
    parser.add_argument("--only", nargs="+", choices=sorted(registry.experiments()),
                        help="refit these experiments only")
    args = parser.parse_args()
    experiments = registry.experiments()
    refit = {name: experiments[name] for name in args.only or experiments}
    runs = [run for path in args.stores for run in Store(path, readonly=True).runs()
            if run["experiment"] in refit]
    calibration = (costs.load_calibration() if args.only else {}) | costs.calibrate(runs, refit)
    costs.CALIBRATION.write_text(json.dumps({"machine": args.machine,
                                             "experiments": calibration}, indent=1) + "\n")
    ratios = []
    for run in runs:
        experiment = costs.timing(run, experiments)
        if experiment is None:
            continue
        config = experiment.config_class.model_validate(run["config"])
        estimated = costs.estimate(experiment, config, run["n_seeds"], calibration)
        ratios.append(estimated / run["wall_s"])
        print(f"{run['experiment']:18s} {run['scale']:8s} measured {run['wall_s']:7.1f} s, "
              f"estimated {estimated:7.1f} s ({estimated / run['wall_s']:.2f}x)")
    print(f"{len(ratios)} runs: estimate / measured median {np.median(ratios):.2f}, "
          f"90% within [{np.quantile(ratios, 0.05):.2f}, {np.quantile(ratios, 0.95):.2f}]; "
          f"written {costs.CALIBRATION}")


if __name__ == "__main__":
    main()
