"""The HTML report: each experiment's latest stored run, its figures and claims, and provenance;
then the doctor sessions stored from users' training runs, with each verdict's history.

Self-contained: one `index.html` (jinja2 template `templates/report.html.j2`) with its figures
copied beside it under `figures/`; no network resources. Failed and diverged runs are shown as
such. The report reads only the store.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import jinja2

import gradfail
from gradfail import registry
from gradfail.experiment import (
    claim_counts,
    is_sanity,
    judged_on_two_seed_sets,
    second_seed_set,
)
from gradfail.errors import StoreError
from gradfail.store import FINISHED, Store


def latest_runs(store: Store) -> list[dict]:
    """The newest finished run of each experiment (done, diverged or failed), in catalogue order
    (unregistered names last); `later_attempt` names a newer attempt that is running or was
    interrupted. Its claims are judged beside its replicate on a second seed set where the store
    holds one (`judged_on_two_seed_sets`; the replicate's id under `replicate`). Replicates are
    never shown on their own."""
    latest: dict[str, dict] = {}
    attempts: dict[str, dict] = {}
    for run in store.runs():
        if "replicate_of_seed" in run["about"]:
            continue
        if run["status"] in FINISHED:
            latest[run["experiment"]] = run
            attempts.pop(run["experiment"], None)
        else:
            attempts[run["experiment"]] = run
    for name, attempt in attempts.items():  # an experiment only ever attempted is shown so
        latest.setdefault(name, attempt)
    for run in latest.values():
        attempt = attempts.get(run["experiment"])
        run["later_attempt"] = None if attempt is None or attempt is run else {
            "id": attempt["id"], "status": attempt["status"]}
        replicate = store.replicate(run["id"], second_seed_set(run["seed"]))
        run["replicate"] = None if replicate is None else replicate["id"]
        run["claims"] = judged_on_two_seed_sets(run["claims"], replicate and replicate["claims"])
    order = list(registry.experiments())
    return sorted(latest.values(), key=lambda run: (
        order.index(run["experiment"]) if run["experiment"] in order else len(order),
        run["experiment"]))


def section(run: dict, out_dir: Path) -> dict:
    """One experiment's section, from what the store holds of its run (a run stored before its
    title and command were stored with it shows its name); its figure files are copied beside
    the report."""
    about = run["about"]
    figures = {}
    for name, path in run["figures"].items():
        source = Path(path)
        if source.exists():
            target = out_dir / "figures" / f"{run['id']}-{run['experiment']}-{name}.png"
            partial = target.with_suffix(".partial.png")
            shutil.copyfile(source, partial)
            os.replace(partial, target)  # the previous report's copy stays whole until then
            figures[name] = target.relative_to(out_dir).as_posix()
        else:
            figures[name] = None
    return {
        "run": run,
        "anchor": run["experiment"],
        "title": about.get("title", run["experiment"]),
        "section": about.get("section", ""),
        "description": about.get("description", []),
        "figures": figures,
        "counts": claim_counts(run["claims"]),
        "empirical": [c for c in run["claims"] if not is_sanity(c)],
        "sanity": [c for c in run["claims"] if is_sanity(c)],
        "command": about.get("command", f"gradfail run {run['experiment']} --scale "
                                        f"{run['scale']}"),
    }


def verdict_history(checks: list[dict]) -> dict[str, list[tuple[int, int]]]:
    """Each verdict's stretches of raised checks, as (first step, last step) pairs."""
    stretches: dict[str, list[list[int]]] = {}
    previous: set[str] = set()
    for check in checks:
        for name in check["raised"]:
            if name in previous:
                stretches[name][-1][1] = check["step"]
            else:
                stretches.setdefault(name, []).append([check["step"], check["step"]])
        previous = set(check["raised"])
    return {name: [tuple(s) for s in found] for name, found in stretches.items()}


def doctor_session(session: dict) -> dict:
    """A stored doctor session (gradfail doctor --store, or Doctor.report(store=...)) for the
    report: its verdicts, when each was raised, and what was measured."""
    document = session["document"]
    return {"id": session["id"], "name": session["name"], "started_at": session["started_at"],
            "optimizer": document.get("optimizer"), "steps": document.get("steps"),
            "verdicts": document.get("verdicts", []),
            "history": verdict_history(document.get("history", [])),
            "coverage": document.get("coverage", {})}


def sanity_totals(checks: list[dict]) -> dict[str, int]:
    """Sanity checks passed and broken (a broken one is a bug, not a result)."""
    return {"passed": sum(c["verdict"] == "holds" for c in checks),
            "broken": sum(c["verdict"] == "fails" for c in checks)}


def write_report(store: Store, out_dir: str | Path) -> Path:
    """Render the report of `store` into `out_dir`; returns the path of index.html."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise StoreError(f"cannot write the report into {out_dir}: it is a file")
    try:
        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot write the report into {out_dir}: {error.strerror}") from None
    if not os.access(out_dir, os.W_OK) or not os.access(out_dir / "figures", os.W_OK):
        raise StoreError(f"cannot write the report into {out_dir}: permission denied")
    sections = [section(run, out_dir) for run in latest_runs(store)]
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("gradfail", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    html = environment.get_template("report.html.j2").render(
        sections=sections, store=str(store.path), version=gradfail.__version__,
        sessions=[doctor_session(s) for s in store.doctor_sessions()],
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        totals=claim_counts([c for s in sections for c in s["run"]["claims"]]),
        sanity=sanity_totals([c for s in sections for c in s["sanity"]]))
    index = out_dir / "index.html"
    partial = out_dir / "index.partial.html"
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, index)
    return index
