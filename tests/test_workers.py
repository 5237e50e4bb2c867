"""Runs side by side (`--jobs N`): the same numbers as in turn, the parent alone writing the
store, a dead worker failing only its own run, Ctrl-C leaving nothing running."""

from __future__ import annotations

import multiprocessing

import pytest
import torch

from gradfail import registry
from gradfail.experiment import SilentProgress
from gradfail.runner import begin, run_plan
from gradfail.store import Store
from gradfail.workers import Job, run_side_by_side

PARITY = registry.get("parity")
TINY = {"dims": [5], "steps": [300], "variance_dims": [4, 5], "floor_dims": [],
        "periodic_dim": 3, "periodic_radii": [0.5], "periodic_inputs": 256}


def tiny_plan(n: int) -> list:
    """n distinct tiny parity runs (different learning rates: different identities)."""
    return [(PARITY, PARITY.config("quick", {**TINY, "lr": 0.5 + 0.1 * i})) for i in range(n)]


def jobs_for(plan: list, store: Store, cores: list[int] | None = None) -> list[Job]:
    cores = cores or [1] * len(plan)
    return [Job(i, cores[i], lambda e=e, c=c: begin(e, c, scale="quick", store=store, seed=0,
                                                    n_seeds=2, device=torch.device("cpu"), threads=1))
            for i, (e, c) in enumerate(plan)]


def measured(outcomes) -> list:
    return [[claim["measured"] for claim in o.claims] for o in outcomes]


def test_runs_side_by_side_give_the_numbers_of_runs_in_turn_and_are_stored_once(tmp_path):
    plan = tiny_plan(3)
    in_turn = run_plan(plan, scale="quick", store=Store(tmp_path / "a.sqlite"), seeds=2, jobs=1)
    store = Store(tmp_path / "b.sqlite")
    side_by_side = run_plan(plan, scale="quick", store=store, seeds=2, jobs=2)
    assert [o.status for o in side_by_side] == ["done"] * 3
    assert measured(side_by_side) == measured(in_turn)
    runs = store.runs()
    assert [run["status"] for run in runs] == ["done"] * 3 and len({r["id"] for r in runs}) == 3
    assert all(run["figures"] for run in runs) and all(store.parts(run["id"]) for run in runs)
    assert all(run["captions"] == PARITY.captions for run in runs)  # sent back with the figures
    assert all(run["provenance"]["threads"] == 1 for run in runs)  # each worker: one thread
    again = run_plan(plan, scale="quick", store=store, seeds=2, jobs=2)
    assert all(o.cached for o in again) and len(store.runs()) == 3


class Events(SilentProgress):
    """Progress that records when each run starts and ends, and may act on the first start."""

    def __init__(self, on_first=None) -> None:
        self.events, self._on_first = [], on_first

    def task(self, description: str, total: int):
        if "(seed" not in description:  # a bar of the experiment's own, not a run's
            return lambda n=1: None
        self.events.append(("start", description))
        if self._on_first is not None:
            act, self._on_first = self._on_first, None
            act()
        return lambda n=1: self.events.append(("end", description))

    def running(self, description: str):
        self.events.append(("phase", description))
        return lambda: self.events.append(("phase ended", description))


def test_a_worker_that_dies_fails_only_its_run_and_a_fresh_worker_goes_on(tmp_path):
    store = Store(tmp_path / "s.sqlite")

    def kill_the_worker():
        for child in multiprocessing.active_children():
            child.kill()

    outcomes = run_side_by_side(jobs_for(tiny_plan(2), store), 1, store,
                                Events(on_first=kill_the_worker))
    assert outcomes[0].status == "failed" and "worker process died" in outcomes[0].error
    assert outcomes[1].status == "done"
    assert [run["status"] for run in store.runs()] == ["failed", "done"]


def test_ctrl_c_in_the_parent_interrupts_the_running_runs_and_ends_every_worker(tmp_path):
    store = Store(tmp_path / "s.sqlite")

    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_side_by_side(jobs_for(tiny_plan(3), store), 2, store, Events(on_first=interrupt))
    assert [run["status"] for run in store.runs()] == ["interrupted"]
    assert multiprocessing.active_children() == []


def test_a_run_that_takes_every_core_runs_alone(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    events = Events()
    run_side_by_side(jobs_for(tiny_plan(3), store, cores=[1, 2, 1]), 2, store, events)
    running, seen_beside_the_wide_one = set(), []
    for kind, description in events.events:  # the wide job is begun first: it is run 1
        running = running | {description} if kind == "start" else running - {description}
        if any(" run 1 " in d for d in running):
            seen_beside_the_wide_one += [d for d in running if " run 1 " not in d]
    assert len([kind for kind, _ in events.events if kind == "end"]) == 3
    phases = [(kind, d) for kind, d in events.events if kind.startswith("phase")]
    assert phases and sorted(d for k, d in phases if k == "phase") == sorted(
        d for k, d in phases if k == "phase ended")  # every part shown while it ran, then gone
    assert seen_beside_the_wide_one == []


def test_jobs_taking_several_cores_go_first_then_the_longest():
    """A two-core job placed after the start idles a slot until the other is free: an order of
    a 2-core job and three 1-core ones (estimates 5, 9, unknown, 1 s) puts it first."""
    from gradfail.perform import dispatch_order

    jobs = [Job(0, 1, None, 5.0), Job(1, 1, None, 9.0), Job(2, 2, None, 1.0),
            Job(3, 1, None, None), Job(4, 1, None, 1.0)]
    assert [job.index for job in sorted(jobs, key=dispatch_order)] == [2, 3, 1, 0, 4]
