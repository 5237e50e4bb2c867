"""Two stores side by side, claim by claim (`gradfail report --compare OTHER`): default against
paper scale, CPU against GPU, one seed set against another. Pure functions of the runs that
`report.latest_runs` gives for each store; the report's template renders what they return."""

from __future__ import annotations

from pathlib import Path

from gradfail.experiment import SCALES, claim_id


def describe(run: dict | None) -> str:
    """One line on a run for the comparison: scale, seeds, device and commit (and its status
    when it did not finish)."""
    if run is None:
        return "no run of this experiment"
    provenance = run.get("provenance") or {}
    commit = provenance.get("git_commit") or "unknown"
    commit = commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")
    seeds = f"{run['n_seeds']} seed{'s' if run['n_seeds'] != 1 else ''} from {run['seed']}"
    if run.get("replicate") is not None:
        seeds += " and a second seed set"
    status = "" if run.get("status", "done") == "done" else f" · {run['status']}"
    return (f"{run['scale']} scale · {seeds} · {run.get('device') or provenance.get('device')}"
            f" · commit {commit}{status}")


def _side(claim: dict | None) -> dict | None:
    return None if claim is None else {key: claim.get(key) for key in (
        "verdict", "measured", "detail")}


def compare(runs: list[dict], others: list[dict]) -> list[dict]:
    """Each experiment's claims paired by id with the other store's of the same id: one
    entry per experiment (in `runs`' order, then those only `others` has) with each side's run
    described in a line (`this_run`, `other_run`) and its `rows`. A row holds the experiment,
    the claim's id, name (this store's, else the other's) and kind, each side's verdict,
    measured value and detail (`this`, `other`: None on the side that lacks the claim),
    `differs` (both sides hold the claim and their verdicts differ) and `only` ("here",
    "there", or None when both hold it). Claims keep this store's order, the other's own after
    them."""
    here = {run["experiment"]: run for run in runs}
    there = {run["experiment"]: run for run in others}
    names = list(here) + [name for name in there if name not in here]
    compared = []
    for experiment in names:
        mine = {claim_id(c): c for c in (here.get(experiment) or {}).get("claims", [])}
        theirs = {claim_id(c): c for c in (there.get(experiment) or {}).get("claims", [])}
        rows = []
        for key in list(mine) + [key for key in theirs if key not in mine]:
            a, b = mine.get(key), theirs.get(key)
            rows.append({
                "experiment": experiment, "id": key, "name": (a or b)["name"],
                "kind": (a or b).get("kind", "empirical"),
                "this": _side(a), "other": _side(b),
                "differs": a is not None and b is not None and a["verdict"] != b["verdict"],
                "only": None if a is not None and b is not None else (
                    "here" if b is None else "there")})
        compared.append({"experiment": experiment, "this_run": describe(here.get(experiment)),
                         "other_run": describe(there.get(experiment)), "rows": rows,
                         "differing": sum(row["differs"] for row in rows),
                         "one_sided": sum(row["only"] is not None for row in rows)})
    return compared


def scales(runs: list[dict]) -> list[str]:
    """The scales a store's shown runs were run at, smallest first."""
    held = {run["scale"] for run in runs}
    return [s for s in SCALES if s in held] + sorted(held - set(SCALES))


def comparison(store_path: Path, runs: list[dict], other_path: Path, others: list[dict]) -> dict:
    """What the report's comparison section shows: both stores named (by file name, or by path
    where the two file names are the same) with the scales they hold, the experiments compared,
    and how many claims differ in verdict or are held by one store only."""
    same_name = store_path.name == other_path.name
    experiments = compare(runs, others)
    return {"this": {"name": str(store_path) if same_name else store_path.name,
                     "scales": scales(runs)},
            "other": {"name": str(other_path) if same_name else other_path.name,
                      "scales": scales(others)},
            "experiments": experiments,
            "differing": sum(e["differing"] for e in experiments),
            "one_sided": sum(e["one_sided"] for e in experiments)}
