"""The parameter server on Ray: real actors, real staleness, and recovery from real kills.

One local cluster (2 CPUs, no dashboard) is shared by the module's tests."""

from __future__ import annotations

import json
import os
import socket
import sys

import numpy as np
import pytest
import torch

from conftest import gradfail_cli
from gradfail import registry
from gradfail.distributed import ray_cluster, ray_server
from gradfail.distributed.mlp_task import TaskGradient
from gradfail.distributed.simulator import Quadratic
from gradfail.errors import ConfigError

ray = pytest.importorskip("ray")
START = np.ones((2, 5), dtype=np.float32)
slow_quadratic = Quadratic(5, seconds=0.05)  # time for a kill to land mid-gradient
loss = slow_quadratic.loss


@pytest.fixture(scope="module")
def cluster():
    ray_cluster.start()
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def fault_free(cluster):
    return ray_server.run_async(START, slow_quadratic, 2, 60, lr=0.1)


def test_two_workers_train_and_their_staleness_is_measured(fault_free):
    assert fault_free.version == 60 and len(fault_free.staleness) == 60
    assert fault_free.lost_gradients == 0
    assert 0 < np.mean(fault_free.staleness) <= 2  # two workers: τ near N − 1 = 1
    assert loss(fault_free.params) < 1e-3 * loss(START)


def test_killing_a_worker_loses_only_its_in_flight_gradient(fault_free):
    hurt = ray_server.run_async(START, slow_quadratic, 2, 60, lr=0.1, faults={20: "worker"})
    assert hurt.version == 60 and hurt.lost_gradients == 1
    assert any("in-flight gradient is lost" in event for event in hurt.events)
    assert loss(hurt.params) < 1e-3 * loss(START)


def test_a_killed_server_restarts_from_its_checkpoint(cluster, tmp_path):
    hurt = ray_server.run_async(START, slow_quadratic, 2, 60, lr=0.1,
                                checkpoint=str(tmp_path / "server.npz"), every=10,
                                faults={25: "server"})
    (event,) = hurt.events
    assert "restarted from its checkpoint at version 20" in event  # at most K = 10 lost
    assert hurt.version == 60 and loss(hurt.params) < 1e-3 * loss(START)


def test_a_killed_worker_costs_digits_accuracy_less_than_a_point(cluster):
    config = registry.get("async_sgd").config("quick")
    factory = TaskGradient(config, seed=0, n_seeds=2)
    task = factory.task()
    runs = [ray_server.run_async(task.initial.numpy(), factory, 2, 600, lr=0.3, faults=faults)
            for faults in ({}, {200: "worker"})]
    accuracy = [task.score(torch.from_numpy(run.params)).mean() for run in runs]
    assert runs[1].lost_gradients == 1 and runs[1].version == 600
    assert accuracy[0] > 0.9 and abs(accuracy[0] - accuracy[1]) <= 0.01


@pytest.mark.parametrize("address, message", [
    ("127.0.0.1:1", "cannot reach the Ray cluster at '127.0.0.1:1'"),
    ("nowhere", "a Ray address is host:port"),
])
def test_an_unreachable_address_is_a_one_line_error(address, message):
    with pytest.raises(ConfigError, match=message) as raised:
        ray_cluster.check_reachable(address)
    assert "\n" not in str(raised.value)


def test_an_open_port_that_is_not_ray_is_refused_at_once():
    import socketserver
    import threading

    class NotRay(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.recv(64)
            self.request.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    with socketserver.TCPServer(("127.0.0.1", 0), NotRay) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        address = f"127.0.0.1:{server.server_address[1]}"
        with pytest.raises(ConfigError, match="does not answer as a Ray cluster"):
            ray_cluster.check_reachable(address, timeout=2)
        server.shutdown()


def test_a_cluster_left_by_a_killed_driver_is_stopped_at_the_next_start(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.setattr(ray_cluster, "LEFTOVERS", tmp_path)
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    driver = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                            capture_output=True, text=True, check=True)
    gone = {"host": socket.gethostname(), "pid": int(driver.stdout), "start": None}
    (tmp_path / "1.json").write_text(json.dumps({"driver": gone, "pids": [orphan.pid]}))
    alive = {"host": gone["host"], "pid": os.getpid(), "start": None}
    (tmp_path / "2.json").write_text(json.dumps({"driver": alive, "pids": [orphan.pid + 10**6]}))
    ray_cluster.stop_leftovers()
    assert orphan.wait(timeout=10) != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.json"]  # a live driver's is kept


def test_without_ray_the_backend_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'gradfail\[ray\]'"):
        ray_cluster.ray_module()


def test_a_sweep_sent_to_ray_lands_in_the_same_store(tmp_path):
    store = str(tmp_path / "g.sqlite")
    sent = gradfail_cli("run", "perceptron_lp", "--scale", "quick", "--backend", "ray",
                        "--store", store, "--json")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["runs"][0]["status"] == "done"  # only JSON on stdout
    (run,) = json.loads(gradfail_cli("runs", "--store", store, "--json").stdout)
    assert run["experiment"] == "perceptron_lp" and run["status"] == "done"


def test_an_unreachable_ray_address_on_the_command_line_exits_2(tmp_path):
    refused = gradfail_cli("run", "perceptron_lp", "--backend", "ray", "--ray-address",
                           "127.0.0.1:1", "--store", str(tmp_path / "g.sqlite"))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "gradfail: error: cannot reach the Ray cluster at '127.0.0.1:1': Connection refused"]
