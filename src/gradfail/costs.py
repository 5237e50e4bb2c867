"""How long a run will take, before it runs: a cost model per experiment.

Each experiment states the computation a run asks for, `Experiment.work(config, seeds)` (e.g.
seeds × steps × batch). Calibrated on a machine from finished runs (`calibrate`), a run's time
is `fixed + per_unit × work`: the fixed seconds (start-up, data, evaluation) and the seconds per
unit of work fitted without negative parts to the runs' measured wall times, one torch thread
each. The calibration shipped in `calibration.json` was measured on the 2-core machine that
develops gradfail (`bench/calibrate_costs.py` records it from a store). A plan's time on N
cores is its runs' estimates scheduled longest first, as `gradfail.workers` runs them.
"""

from __future__ import annotations

import heapq
import json
import math
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

CALIBRATION = Path(__file__).with_name("calibration.json")


def load_calibration(path: Path = CALIBRATION) -> dict[str, dict]:
    """Experiment name -> {"fixed_s", "per_unit_s", "runs", "machine"}; empty if none."""
    try:
        return json.loads(path.read_text())["experiments"]
    except (OSError, ValueError, KeyError):
        return {}


def calibrated_on(path: Path = CALIBRATION) -> str:
    """Where the shipped calibration was measured, in words."""
    try:
        return json.loads(path.read_text())["machine"]
    except (OSError, ValueError, KeyError):
        return "no machine: no calibration"


def estimate(experiment, config, seeds: int, calibration: dict[str, dict]) -> float | None:
    """Seconds a run of `experiment` at `config` on `seeds` seeds should take on one thread of
    the calibrated machine; None for an experiment never calibrated."""
    model = calibration.get(experiment.name)
    if model is None:
        return None
    return model["fixed_s"] + model["per_unit_s"] * experiment.work(config, seeds)


def fit(work: list[float], wall_s: list[float]) -> tuple[float, float]:
    """(fixed seconds, seconds per unit) from runs of one experiment: least squares with both
    parts ≥ 0; one distinct amount of work gives a rate alone (no fixed part)."""
    work_a, wall_a = np.asarray(work, dtype=float), np.asarray(wall_s, dtype=float)
    if len(set(work_a.tolist())) < 2:
        return 0.0, float(np.median(wall_a / work_a))
    (fixed, per_unit), _ = nnls(np.column_stack([np.ones_like(work_a), work_a]), wall_a)
    return float(fixed), float(per_unit)


def timing(run: dict, experiments: dict):
    """The experiment whose model a stored run (`Store.runs()`) times: a done, timed run of its
    current version (an older version timed an older implementation); else None."""
    experiment = experiments.get(run["experiment"])
    if experiment is None or run["status"] != "done" or not run.get("wall_s") or \
            run.get("version", experiment.version) != experiment.version:
        return None
    return experiment


def calibrate(runs: list[dict], experiments: dict) -> dict[str, dict]:
    """A calibration from a store's finished runs (`Store.runs()`): each experiment's model
    fitted to the runs that time it (`timing`), with how many there were and where they ran."""
    found: dict[str, list[tuple[float, float, str]]] = {}
    for run in runs:
        experiment = timing(run, experiments)
        if experiment is None:
            continue
        config = experiment.config_class.model_validate(run["config"])
        machine = run["provenance"].get("device_name") or run["provenance"].get("platform")
        found.setdefault(run["experiment"], []).append(
            (experiment.work(config, run["n_seeds"]), run["wall_s"], machine))
    calibration = {}
    for name, points in found.items():
        fixed, per_unit = fit([p[0] for p in points], [p[1] for p in points])
        calibration[name] = {"fixed_s": fixed, "per_unit_s": per_unit, "runs": len(points),
                             "machine": points[0][2]}
    return calibration


def schedule(runs: list[tuple[float, int]], slots: int) -> float:
    """Seconds until the last of `runs` ((seconds, cores) each) ends when they are started
    longest first whenever enough of `slots` cores are free (a run wanting more takes all)."""
    now, free, running = 0.0, slots, []  # running: a heap of (end time, cores)
    for seconds, cores in sorted(runs, key=lambda run: -run[0]):
        cores = min(cores, slots)
        while free < cores:
            now, released = heapq.heappop(running)
            free += released
        heapq.heappush(running, (now + seconds, cores))
        free -= cores
    return max((end for end, _ in running), default=0.0)


def duration(seconds: float | None) -> str:
    """A time as a reader says it: 40 s, 3 min 05 s, 1 h 12 min; "unknown" for None."""
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def plan_costs(runs: list, jobs: int, device: str, store=None) -> dict:
    """Each planned run (`gradfail.runner.PlannedRun`) with its estimate (0 when `store` holds it
    complete already), and the plan's total in turn, with `jobs` cores and with 16."""
    from gradfail.store import COMPLETE

    rows = []
    for run in runs:
        found = store and store.find_run(run.identity(device))
        stored = bool(found) and found["status"] in COMPLETE
        rows.append({"experiment": run.experiment.name, "seed": run.seed, "seeds": run.n_seeds,
                     "second_seed_set": run.replicate_of is not None, "cores": run.cores,
                     "estimate_s": 0.0 if stored else run.estimate_s, "stored": stored})
    left = [(row["estimate_s"] or 0.0, row["cores"]) for row in rows]
    return {"runs": rows, "jobs": jobs, "calibrated_on": calibrated_on(),
            "totals": {"in_turn_s": sum(seconds for seconds, _ in left),
                       "jobs_s": schedule(left, jobs), "cores_16_s": schedule(left, 16)},
            "unknown": sorted({row["experiment"] for row in rows if row["estimate_s"] is None})}
