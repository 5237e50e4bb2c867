"""The parameter server on Ray: the server and the workers as actors, real staleness.

The same `ServerLogic` as the simulator runs inside a server actor. Each worker actor pushes
its gradient to the server itself and gets the new parameters back in the same call (numpy
arrays through Ray's shared-memory object store, read without a copy); the driver only moves
small reports. It keeps one step in flight per worker and takes whichever finishes first
(`ray.wait`), so the staleness is whatever the machine produces. A worker that dies costs only
its in-flight gradient (counted as lost); Ray restarts it and it gets the next call. The server
checkpoints every K updates and reloads the checkpoint when Ray restarts it, so a server crash
loses at most K updates. Ray is an optional extra (`pip install 'gradfail[ray]'`); without it
this module says so in one line.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gradfail.distributed.server import GradientFn, ServerLogic, require
from gradfail.distributed.ray_cluster import ray_module, start
from gradfail.errors import ConfigError

GradientFactory = Callable[[int], GradientFn]  # factory(worker), built in the worker


# --------------------------------------------------------------------------------------------
# The actors.


class ServerActor:
    """`ServerLogic` behind an actor: push a gradient, get the new parameters and version back in
    the same call. Applies at most `limit` updates (later pushes are not applied, as gradients
    still in flight at the end). Checkpoints (parameters, version) every `every` updates;
    reloads them on (re)start."""

    def __init__(self, params: np.ndarray, rule: str, lr: float, dc_lambda: float, limit: int,
                 checkpoint: str | None = None, every: int = 50):
        self.checkpoint, self.every, self.limit = checkpoint, every, limit
        self.logic = ServerLogic(torch.from_numpy(np.array(params)), rule, lr, dc_lambda)
        self.restored, self.restored_from = False, None
        if checkpoint and Path(checkpoint).exists():
            saved = np.load(checkpoint)
            self.logic.restore(torch.from_numpy(saved["params"]), int(saved["version"]),
                               saved["staleness"].tolist())
            self.restored, self.restored_from = True, int(saved["version"])

    def read(self) -> tuple[np.ndarray, int, int]:
        """(parameters, version, this server's pid: a restarted server has a new one)."""
        return self.logic.params.numpy(), self.logic.version, os.getpid()

    def push(self, gradient: np.ndarray, read_version: int) -> tuple[np.ndarray, int, int]:
        """Apply one gradient computed at `read_version` (unless `limit` updates are done);
        the state after it, as `read` gives it."""
        if self.logic.version < self.limit:
            self.logic.apply([(shared_tensor(gradient), self.logic.held(read_version))])
            if self.checkpoint and self.logic.version % self.every == 0:
                partial = f"{self.checkpoint}.partial.npz"
                np.savez(partial, params=self.logic.params.numpy(), version=self.logic.version,
                         staleness=np.asarray(self.logic.staleness))
                os.replace(partial, self.checkpoint)
        return self.read()

    def state(self) -> dict:
        return {"version": self.logic.version, "staleness": self.logic.staleness,
                "restored": self.restored, "restored_from": self.restored_from,
                "pid": os.getpid()}


class WorkerActor:
    """Keeps the parameters the server last sent it; each step computes a gradient there and
    pushes it to the server itself, getting the new parameters back in the same call (the
    arrays never pass through the driver)."""

    def __init__(self, factory: GradientFactory, worker: int, server):
        torch.set_num_threads(1)
        self.gradient, self.worker, self.server = factory(worker), worker, server
        self.state: tuple[np.ndarray, int, int] | None = None  # a restarted worker has none

    def step(self, seq: int, die: bool = False) -> dict:
        """One gradient computed and pushed: {"version", "server", "lost"} after it. `die` ends
        this process mid-gradient (a real crash, for fault tests: Ray restarts the actor, the
        gradient is lost). A push to a server that died is lost; the worker then waits for the
        restarted server and takes its state."""
        import ray

        if self.state is None:
            self.state = ray.get(call_when_ready(ray, self.server.read.remote))
        if die:
            os._exit(1)
        params, version, _ = self.state
        gradient = self.gradient(torch.from_numpy(np.array(params)), self.worker, seq)
        try:
            self.state = ray.get(self.server.push.remote(gradient.numpy(), version))
            lost = False
        except ray.exceptions.RayActorError:
            self.state = ray.get(call_when_ready(ray, self.server.read.remote))
            lost = True
        return {"version": self.state[1], "server": self.state[2], "lost": lost}

    def pid(self) -> int:
        return os.getpid()


# --------------------------------------------------------------------------------------------
# The coordinator.


@dataclass
class RayResult:
    params: np.ndarray
    version: int
    staleness: list[int]
    gradients: int
    lost_gradients: int
    seconds: float
    events: list[str] = field(default_factory=list)


def run_async(initial: np.ndarray, factory: GradientFactory, workers: int, updates: int,
              rule: str = "async", lr: float = 0.1, dc_lambda: float = 0.04,
              checkpoint: str | None = None, every: int = 50,
              faults: dict[int, str] | None = None) -> RayResult:
    """Downpour on Ray: `workers` actors, one gradient in flight each, `updates` server steps.
    `faults` maps a server version to "worker" or "server": when the server reaches it, the
    worker that just pushed exits mid-gradient on its next step, or the server's process is
    killed; Ray restarts either, to test recovery."""
    require(workers >= 1, f"the number of workers must be at least 1; got {workers}")
    ray = ray_module()
    start()
    run = Coordinator.launch(ray, initial, factory, workers, rule, lr, dc_lambda, updates,
                             checkpoint, every, faults)
    for w in range(workers):
        run.ask(w)
    while run.version < updates:  # the driver moves small reports only
        (ready,), _ = ray.wait(list(run.in_flight), num_returns=1)
        w = run.in_flight.pop(ready)
        if run.stepped(w, ready):
            run.ask_next(w)
    run.settle()
    return run.finish()


@dataclass
class Coordinator:
    """The driver of `run_async`: the actors, the steps in flight, the faults still to inject,
    and what the run has counted so far."""

    ray: Any
    server: Any  # the ServerActor's handle
    pool: list  # WorkerActor handles, by worker index
    faults: dict[int, str]  # server version → "worker" or "server"
    server_pid: int
    begin: float = field(default_factory=time.perf_counter)
    in_flight: dict = field(default_factory=dict)  # step ref → worker
    seq: int = 0
    version: int = 0
    lost: int = 0
    gradients: int = 0
    events: list[str] = field(default_factory=list)

    @classmethod
    def launch(cls, ray, initial: np.ndarray, factory: GradientFactory, workers: int, rule: str,
               lr: float, dc_lambda: float, updates: int, checkpoint: str | None, every: int,
               faults: dict[int, str] | None) -> Coordinator:
        """The server actor (restarted once, from its checkpoint, when it has one) and
        `workers` worker actors (restarted whenever they die)."""
        server = ray.remote(num_cpus=0, max_restarts=1 if checkpoint else 0)(ServerActor).remote(
            initial, rule, lr, dc_lambda, updates, checkpoint, every)
        remote_worker = ray.remote(num_cpus=0, max_restarts=-1)(WorkerActor)
        pool = [remote_worker.remote(factory, w, server) for w in range(workers)]
        return cls(ray, server, pool, dict(faults or {}), ray.get(server.read.remote())[2])

    def ask(self, w: int, die: bool = False) -> None:
        """Worker `w`'s next step (`die`: exit mid-gradient instead)."""
        self.in_flight[self.pool[w].step.options(max_task_retries=0).remote(self.seq, die)] = w
        self.seq += 1

    def stepped(self, w: int, ref) -> bool:
        """Count worker `w`'s finished step; if the worker died, its gradient is lost and the
        restarted worker is asked for a new one (False)."""
        try:
            report = self.ray.get(ref)
        except self.ray.exceptions.RayActorError:
            self.lost += 1
            self.events.append(f"worker {w} died: its in-flight gradient is lost (noticed at "
                               f"version {self.version})")
            call_when_ready(self.ray, self.pool[w].pid.remote)
            self.ask(w)
            return False
        self.gradients += 1
        if report["server"] != self.server_pid:  # the first report from a restarted server
            restored = self.ray.get(self.server.state.remote())["restored_from"]
            self.events.append(f"server died after version {self.version}; restarted from "
                               f"its checkpoint at version {restored}")
            self.server_pid, self.version = report["server"], report["version"]
        self.lost += report["lost"]
        self.version = max(self.version, report["version"])
        return True

    def ask_next(self, w: int) -> None:
        """Ask worker `w` again, injecting the first fault now due, if any (reports can arrive
        out of order, so a fault is due once the version has reached it)."""
        due = min((version for version in self.faults if version <= self.version), default=None)
        kill = None if due is None else self.faults.pop(due)
        self.ask(w, kill == "worker")
        if kill == "server":
            self.ray.kill(self.server, no_restart=False)

    def settle(self) -> None:
        """Steps still in flight push beyond the last update (not applied); those whose worker
        died count as lost."""
        settled, _ = self.ray.wait(list(self.in_flight), num_returns=len(self.in_flight),
                                   timeout=30)
        for ref in settled:
            try:
                self.ray.get(ref)
            except self.ray.exceptions.RayActorError:
                self.lost += 1
                self.events.append(f"worker {self.in_flight[ref]} died: its in-flight "
                                   "gradient is lost (noticed at the end)")

    def finish(self) -> RayResult:
        """The server's final state; every actor killed."""
        final = self.ray.get(self.server.state.remote())
        params, _, _ = self.ray.get(self.server.read.remote())
        for actor in [self.server, *self.pool]:
            self.ray.kill(actor)
        return RayResult(np.array(params), final["version"], final["staleness"],
                         self.gradients, self.lost, time.perf_counter() - self.begin,
                         self.events)


def shared_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor on an array Ray read from shared memory (read-only, never written): no copy."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def call_when_ready(ray, call: Callable, attempts: int = 100):
    """An actor call retried while Ray restarts the actor (ActorUnavailableError)."""
    for _ in range(attempts):
        ref = call()
        try:
            ray.wait([ref], timeout=30)
            ray.get(ref, timeout=30)
            return ref
        except (ray.exceptions.ActorUnavailableError, ray.exceptions.RayActorError):
            time.sleep(0.1)
    raise ConfigError("a Ray actor did not come back after being restarted")
