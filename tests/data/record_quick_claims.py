"""Re-record quick_claims.json after an intended change: every experiment at quick scale,
seed 0, with the version each was recorded at, each claim by its id. Run from the repository
root: `.venv/bin/python tests/data/record_quick_claims.py`."""

import json
import tempfile
from pathlib import Path

from gradfail import registry
from gradfail.report import latest_runs
from gradfail.runner import run_experiment
from gradfail.store import Store


def record() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "quick.sqlite")
        for experiment in registry.experiments().values():
            outcome = run_experiment(experiment, experiment.config("quick"), scale="quick",
                                     store=store, n_seeds=experiment.seeds["quick"])
            print(experiment.name, outcome.status, f"{outcome.wall_s:.1f} s", flush=True)
        recorded = {"_versions": {e.name: e.version for e in registry.experiments().values()}}
        recorded |= {run["experiment"]: {c["id"]: {"verdict": c["verdict"],
                                                   "measured": c["measured"]}
                                         for c in run["claims"]} for run in latest_runs(store)}
    (Path(__file__).parent / "quick_claims.json").write_text(
        json.dumps(recorded, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":  # weight_sharing measures in a spawned process, which imports this
    record()
