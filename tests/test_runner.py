"""Runs end done, diverged or failed; a sweep goes on past a bad run; nothing stored is lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch

from gradfail import registry
from gradfail.runner import run_experiment, run_plan
from gradfail.store import Store

PARITY = registry.get("parity")
TINY = {"dims": [5], "steps": [300], "variance_dims": [4, 5], "floor_dims": [],
        "periodic_dim": 3, "periodic_radii": [0.5], "periodic_inputs": 256}


def test_a_diverging_run_is_stored_as_diverged_and_the_sweep_goes_on(tmp_path):
    diverging = PARITY.config("quick", {**TINY, "lr": 1e38})
    healthy = PARITY.config("quick", TINY)
    outcomes = run_plan([(PARITY, diverging), (PARITY, healthy)], scale="quick",
                        store=Store(tmp_path / "s.sqlite"), seeds=2)
    assert [o.status for o in outcomes] == ["diverged", "done"]
    runs = Store(tmp_path / "s.sqlite").runs()
    assert [run["status"] for run in runs] == ["diverged", "done"]
    assert "not finite" in runs[0]["error"]
    # a diverged run is a result: running it again does not redo it
    again = run_experiment(PARITY, diverging, scale="quick", store=Store(tmp_path / "s.sqlite"),
                           n_seeds=2)
    assert again.cached and again.status == "diverged"


def test_a_crashing_experiment_is_stored_as_failed_and_earlier_runs_are_kept(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    first = run_experiment(PARITY, PARITY.config("quick", TINY), scale="quick", store=store,
                           n_seeds=2)

    def broken(config, ctx):
        ctx.part("a finished piece", lambda: {"value": 1})
        raise RuntimeError("a bug")

    failed = run_experiment(replace(PARITY, name="broken", run=broken),
                            PARITY.config("quick", TINY), scale="quick", store=store)
    assert failed.status == "failed" and "RuntimeError: a bug" in failed.error
    runs = store.runs()
    assert runs[0]["id"] == first.id and runs[0]["status"] == "done" and runs[0]["claims"]
    assert store.load_part(failed.id, "a finished piece") == {"value": 1}



@pytest.mark.parametrize("stage", ["claim", "figures", "store"])
def test_a_claim_a_figure_or_a_store_write_that_raises_fails_the_run_and_the_sweep_goes_on(
        tmp_path, stage):
    def raising(*args, **kwargs):
        raise ValueError(f"the {stage} broke\nsecond line")

    broken = PARITY
    if stage == "claim":
        broken = replace(PARITY, claims=(replace(PARITY.claims[0], check=raising),))
    elif stage == "figures":
        broken = replace(PARITY, figures=raising)
    else:  # a result the store cannot write
        broken = replace(PARITY, run=lambda config, ctx: {"unstorable": object()}, claims=(),
                         figures=lambda config, result: {})
    healthy = PARITY.config("quick", TINY)
    run_plan([(replace(broken, name="broken"), healthy), (PARITY, healthy)], scale="quick",
             store=Store(tmp_path / "s.sqlite"), seeds=2)
    failed, done = Store(tmp_path / "s.sqlite").runs()
    assert failed["status"] == "failed" and done["status"] == "done"
    assert failed["error"].startswith("after the run") and "\n" not in failed["error"]

@pytest.mark.slow
def test_a_killed_run_resumes_where_it_stopped_and_matches_an_uninterrupted_run(tmp_path):
    """Kill a real `gradfail run` mid-way (SIGKILL), run it again, compare with a clean run."""
    store = tmp_path / "killed.sqlite"
    command = [sys.executable, "-m", "gradfail.cli", "run", "parity", "--scale", "quick",
               "--json", "--store", str(store)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finished_parts: list = []
    deadline = time.time() + 300
    while not finished_parts and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
        if store.exists():
            with sqlite3.connect(store, timeout=30) as db:
                finished_parts = db.execute("SELECT key, finished_at FROM parts").fetchall()
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("running",)]
        killed_parts = db.execute("SELECT key, finished_at FROM parts").fetchall()
    assert finished_parts

    resumed = subprocess.run(command, capture_output=True, text=True, check=True)
    (run,) = json.loads(resumed.stdout)["runs"]
    assert run["status"] == "done"
    assert set(run["resumed_parts"]) == {key for key, _ in killed_parts}
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*), max(attempts) FROM runs").fetchone() == (1, 2)
        for key, finished_at in killed_parts:  # stored parts were not recomputed
            assert db.execute("SELECT finished_at FROM parts WHERE key=?", (key,)).fetchone() == (
                finished_at,)

    clean = tmp_path / "clean.sqlite"
    subprocess.run([*command[:-1], str(clean)], capture_output=True, check=True)
    clean_store = Store(clean)
    assert len(killed_parts) < len(clean_store.parts(1))  # it was killed part-way
    assert Store(store).runs()[0]["result"] == clean_store.runs()[0]["result"]


# --------------------------------------------------------------------------------------------
# Stability: a verdict judged again on a second, disjoint seed set.


def seed_dependent(name: str = "coin"):
    """An experiment whose one empirical claim holds or fails with its draw (seeded: the same
    base seed, the same verdict), and one sanity check that always passes."""
    from gradfail.experiment import Check, Claim

    def run(config, ctx):
        return {"draw": float(torch.rand((), generator=ctx.generator("coin")))}

    claims = (Claim("the coin lands high", "folklore", "draw ≥ 0.5",
                    lambda config, result: Check.judge(result["draw"] >= 0.5, result["draw"],
                                                       f"draw {result['draw']:.2f}"),
                    id="coin-lands-high"),
              Claim("a draw is a fraction", "definition", "0 ≤ draw ≤ 1",
                    lambda config, result: Check.judge(0 <= result["draw"] <= 1, None, "ok"),
                    kind="sanity", id="draw-is-a-fraction"))
    return replace(PARITY, name=name, run=run, figures=lambda config, result: {}, claims=claims)


def draws_of(seed: int, n: int = 1) -> float:
    from gradfail.experiment import RunContext, SilentProgress, MemoryParts

    ctx = RunContext(torch.device("cpu"), seed, n, MemoryParts(), SilentProgress())
    return float(torch.rand((), generator=ctx.generator("coin")))


def test_a_verdict_that_differs_between_two_seed_sets_is_inconclusive(tmp_path):
    from gradfail.experiment import second_seed_set
    from gradfail.report import latest_runs

    # a base seed whose verdict flips on its second seed set, and one whose verdict does not
    flips = next(s for s in range(100) if (draws_of(s) >= 0.5) != (draws_of(second_seed_set(s))
                                                                   >= 0.5))
    stays = next(s for s in range(100) if (draws_of(s) >= 0.5) == (draws_of(second_seed_set(s))
                                                                   >= 0.5))
    for seed in (flips, stays):
        store = Store(tmp_path / f"{seed}.sqlite")
        coin = seed_dependent()
        outcomes = run_plan([(coin, coin.config("quick", TINY))], scale="quick", store=store,
                            seed=seed, seeds=1, stability=True)
        first, second = outcomes
        assert second.replicate_of == seed and second.seed == second_seed_set(seed)
        claim, sanity = first.claims
        assert sanity["verdict"] == "holds" and sanity["stable"]
        assert claim["second_verdict"] == second.claims[0]["verdict"]
        if seed == flips:
            assert claim["verdict"] == "inconclusive" and claim["holds"] is None
            assert "unstable" in claim["detail"] and claim["stable"] is False
        else:
            assert claim["verdict"] in ("holds", "fails") and claim["stable"]
        # the report judges the same way from the store, and never shows the replicate alone
        [shown] = latest_runs(store)
        assert shown["id"] == first.id and shown["replicate"] == second.id
        assert [c["verdict"] for c in shown["claims"]] == [c["verdict"] for c in first.claims]


def test_without_a_replicate_verdicts_stand_and_are_marked_untested(tmp_path):
    from gradfail.report import latest_runs

    store = Store(tmp_path / "s.sqlite")
    coin = seed_dependent()
    [outcome] = run_plan([(coin, coin.config("quick", TINY))], scale="quick", store=store,
                         seeds=1)
    [shown] = latest_runs(store)
    assert shown["replicate"] is None
    assert [c["verdict"] for c in shown["claims"]] == [c["verdict"] for c in outcome.claims]
    assert all(c["stable"] is None for c in shown["claims"])


def test_a_seed_free_experiment_is_not_repeated_on_a_second_seed_set_and_may_not_draw(tmp_path):
    from gradfail.experiment import Check, Claim

    fixed = replace(seed_dependent("fixed"), seeded=False,
                    run=lambda config, ctx: {"draw": 0.75}, claims=(Claim(
                        "the value is high", "folklore", "value ≥ 0.5",
                        lambda config, result: Check.judge(result["draw"] >= 0.5, 0.75, "0.75"),
                        id="value-is-high"),))
    coin = seed_dependent()
    store = Store(tmp_path / "s.sqlite")
    outcomes = run_plan([(fixed, fixed.config("quick", TINY)), (coin, coin.config("quick", TINY))],
                        scale="quick", store=store, seeds=1, stability=True)
    assert [(o.experiment, o.replicate_of) for o in outcomes] == [
        ("fixed", None), ("coin", None), ("coin", 0)]
    assert outcomes[0].claims[0]["verdict"] == "holds" and outcomes[0].claims[0].get(
        "stable") is None
    # the declaration is enforced: a seed-free experiment that draws fails, with the reason
    drawing = replace(seed_dependent("drawing"), seeded=False)
    [failed] = run_plan([(drawing, drawing.config("quick", TINY))], scale="quick", store=store,
                        seeds=1)
    assert failed.status == "failed" and "seed-free" in failed.error
    assert not registry.get("doctor_bench").seeded and registry.get("doctor_zoo").seeded


def test_every_part_is_shown_while_it_runs_and_ended_even_when_it_raises():
    from gradfail.experiment import RunContext, SilentProgress

    shown = []

    class Phases(SilentProgress):
        def running(self, description):
            shown.append(("running", description))
            return lambda: shown.append(("ended", description))

    ctx = RunContext(torch.device("cpu"), 0, 1, progress=Phases())
    ctx.part("fine", lambda: {"value": 1})
    with pytest.raises(ZeroDivisionError):
        ctx.part("broken", lambda: {"value": 1 / 0})
    assert shown == [("running", "fine"), ("ended", "fine"), ("running", "broken"),
                     ("ended", "broken")]
