"""The cost model: a fit that recovers a constructed cost, a schedule against brute force, and
a dry run that runs nothing and touches no store."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest

from conftest import gradfail_cli
from gradfail import costs, registry


def test_the_fit_recovers_a_fixed_part_and_a_rate_and_never_goes_negative():
    work = [10.0, 20.0, 40.0, 80.0]
    fixed, per_unit = costs.fit(work, [3.0 + 0.5 * w for w in work])
    assert fixed == pytest.approx(3.0) and per_unit == pytest.approx(0.5)
    fixed, per_unit = costs.fit([1.0, 2.0], [5.0, 4.0])  # slower with less work: no negative rate
    assert fixed >= 0 and per_unit >= 0
    assert costs.fit([4.0, 4.0], [2.0, 6.0]) == (0.0, 1.0)  # one amount of work: a rate alone


def brute_force(runs: list[tuple[float, int]], slots: int) -> float:
    """The longest-first schedule simulated second by second on integer durations."""
    waiting = sorted(runs, key=lambda run: -run[0])
    running, now = [], 0
    while waiting or running:
        running = [(end, cores) for end, cores in running if end > now]
        while waiting and sum(c for _, c in running) + min(waiting[0][1], slots) <= slots:
            seconds, cores = waiting.pop(0)
            running.append((now + seconds, min(cores, slots)))
        if not waiting and not running:
            break
        now += 1
    return now


@pytest.mark.parametrize("slots", [1, 2, 3])
def test_the_schedule_matches_a_brute_force_simulation(slots):
    for runs in itertools.islice(itertools.permutations(
            [(5, 1), (3, 2), (8, 1), (2, 1), (4, 3), (1, 1)]), 0, 720, 37):
        assert costs.schedule(list(runs), slots) == brute_force(list(runs), slots)
    assert costs.schedule([(10, 1)] * 4, 2) == 20 and costs.schedule([], 2) == 0


def test_calibrating_from_stored_runs_predicts_them():
    parity = replace(registry.get("parity"), work=lambda config, seeds: seeds * sum(config.steps))
    runs = []
    for steps, wall in ((1000, 12.0), (4000, 42.0)):
        config = parity.config("quick", {"steps": [steps]})
        runs.append({"experiment": "parity", "status": "done", "wall_s": wall, "n_seeds": 2,
                     "config": json.loads(config.model_dump_json()),
                     "provenance": {"device_name": "test machine"}})
    calibration = costs.calibrate(runs, {"parity": parity})
    assert calibration["parity"]["runs"] == 2 and calibration["parity"]["machine"] == "test machine"
    for run in runs:
        config = parity.config_class.model_validate(run["config"])
        assert costs.estimate(parity, config, 2, calibration) == pytest.approx(run["wall_s"])
    assert costs.estimate(registry.get("stocks"), None, 2, calibration) is None
    older = [run | {"version": parity.version - 1, "wall_s": 10 * run["wall_s"]} for run in runs]
    assert costs.calibrate(older + runs, {"parity": parity}) == calibration  # an old version's


def test_a_dry_run_prints_the_estimates_and_touches_no_store(tmp_path):
    store = tmp_path / "never.sqlite"
    found = gradfail_cli("reproduce", "parity", "stocks", "--scale", "quick", "--stability",
                         "--jobs", "2", "--dry-run", "--json", "--store", str(store))
    assert found.returncode == 0, found.stderr
    document = json.loads(found.stdout)
    assert [row["experiment"] for row in document["runs"]] == ["parity", "stocks"] * 2
    assert [row["second_seed_set"] for row in document["runs"]] == [False, False, True, True]
    assert set(document["totals"]) == {"in_turn_s", "jobs_s", "cores_16_s"}
    assert not store.exists() and not (tmp_path / "report").exists()
