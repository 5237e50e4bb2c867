"""A reproduce sent to a real two-node Ray cluster on loopback, with one node killed mid-way:
the driver alone writes the store, the lost task is retried on the other node, and the
verdicts equal those of a local run."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from conftest import gradfail_cli
from gradfail import registry
from gradfail.runner import run_plan
from gradfail.store import Store

ray = pytest.importorskip("ray")
NAMES = ("parity", "saddles", "deep_linear")


def progress(store) -> tuple[int, int]:
    """(parts stored, runs finished) as the driver has written them so far."""
    if not store.exists():
        return 0, 0
    found = Store(store, readonly=True)
    runs = found.runs()
    return (sum(len(found.parts(run["id"])) for run in runs),
            sum(run["status"] == "done" for run in runs))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_reproduce_on_two_nodes_survives_a_killed_node_and_matches_a_local_run(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    doomed = cluster.add_node(num_cpus=2)  # at first the only node with room for a run
    cluster.wait_for_nodes()
    store = tmp_path / "cluster.sqlite"
    out, err = tmp_path / "stdout", tmp_path / "stderr"  # files: a full pipe would block it
    driver = subprocess.Popen(
        [sys.executable, "-m", "gradfail.cli", "reproduce", *NAMES, "--scale", "quick",
         "--backend", "ray", "--ray-address", cluster.address, "--store", str(store), "--json"],
        stdout=out.open("w"), stderr=err.open("w"))
    try:
        deadline = time.monotonic() + 300
        while progress(store)[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        parts, finished = progress(store)
        assert parts > 0 and finished < len(NAMES), "the kill did not land mid-way"
        cluster.add_node(num_cpus=2)
        cluster.remove_node(doomed)  # the node dies with the tasks running on it
        driver.wait(timeout=600)
    finally:
        driver.kill()
        cluster.shutdown()
    assert driver.returncode == 0, err.read_text()[-2000:]
    runs = json.loads(out.read_text())["runs"]
    assert [run["status"] for run in runs] == ["done"] * 3
    local = run_plan([(registry.get(n), registry.get(n).config("quick")) for n in NAMES],
                     scale="quick", store=Store(tmp_path / "local.sqlite"))
    for sent, here in zip(runs, local, strict=True):
        assert [c["verdict"] for c in sent["claims"]] == [c["verdict"] for c in here.claims]
        for a, b in zip(sent["claims"], here.claims, strict=True):  # None: not measured
            assert a["measured"] == b["measured"] or a["measured"] == pytest.approx(
                b["measured"], rel=1e-6)
    stored = Store(store).runs()  # written by the driver alone, each run once
    assert sorted(run["experiment"] for run in stored) == sorted(NAMES)
    assert gradfail_cli("runs", "--store", str(store), "--json").returncode == 0
