"""The parameter server on Ray: the server and the workers as actors, real staleness.

The same `ServerLogic` as the simulator runs inside a server actor; workers are stateless
actors that get the parameters with every call (an ObjectRef, resolved by Ray: one copy for all).
The coordinator keeps one gradient in flight per worker and takes whichever finishes first
(`ray.wait`), so the staleness is whatever the machine produces. A worker that dies costs only
its in-flight gradient (counted as lost); Ray restarts it and it gets the next call. The server
checkpoints every K updates and reloads the checkpoint when Ray restarts it, so a server crash
loses at most K updates. Ray is an optional extra (`pip install 'gradfail[ray]'`); without it
this module says so in one line.
"""

from __future__ import annotations

import os
import time
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
    """`ServerLogic` behind an actor: push a gradient, get the new parameters and version.
    Checkpoints (parameters, version) every `every` updates; reloads them on (re)start."""

    def __init__(self, params: np.ndarray, rule: str, lr: float, dc_lambda: float,
                 checkpoint: str | None = None, every: int = 50):
        self.checkpoint, self.every = checkpoint, every
        self.logic = ServerLogic(torch.from_numpy(np.array(params)), rule, lr, dc_lambda)
        self.restored = False
        if checkpoint and Path(checkpoint).exists():
            saved = np.load(checkpoint)
            self.logic.restore(torch.from_numpy(saved["params"]), int(saved["version"]),
                               saved["staleness"].tolist())
            self.restored = True

    def read(self) -> tuple[np.ndarray, int]:
        return self.logic.params.numpy(), self.logic.version

    def push(self, gradient: np.ndarray, read_version: int
             ) -> tuple[tuple[np.ndarray, int], int]:
        """Apply one gradient; returns the new state (for workers) and its version (for the
        coordinator), as two objects."""
        self.logic.apply([(torch.from_numpy(np.array(gradient)), self.logic.held(read_version))])
        if self.checkpoint and self.logic.version % self.every == 0:
            partial = f"{self.checkpoint}.partial.npz"
            np.savez(partial, params=self.logic.params.numpy(), version=self.logic.version,
                     staleness=np.asarray(self.logic.staleness))
            os.replace(partial, self.checkpoint)
        return self.read(), self.logic.version

    def state(self) -> dict:
        return {"version": self.logic.version, "staleness": self.logic.staleness,
                "restored": self.restored, "pid": os.getpid()}


class WorkerActor:
    """Stateless: builds its gradient function once, then computes on whatever it is sent."""

    def __init__(self, factory: GradientFactory, worker: int):
        torch.set_num_threads(1)
        self.gradient, self.worker = factory(worker), worker

    def compute(self, state: tuple[np.ndarray, int], seq: int, die: bool = False
                ) -> tuple[np.ndarray, int]:
        """The gradient at the parameters sent; `die` ends this process mid-gradient (a real
        crash, for fault tests: Ray restarts the actor, the gradient is lost)."""
        if die:
            os._exit(1)
        params, version = state
        gradient = self.gradient(torch.from_numpy(np.array(params)), self.worker, seq)
        return gradient.numpy(), version

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
    worker just sent a gradient to compute exits mid-gradient, or the server's process is
    killed; Ray restarts either, to test recovery."""
    require(workers >= 1, f"the number of workers must be at least 1; got {workers}")
    ray = ray_module()
    start()
    run = Coordinator.launch(ray, initial, factory, workers, rule, lr, dc_lambda, checkpoint,
                             every, faults)
    state = run.server.read.remote()
    for w in range(workers):
        run.ask(w, state)
    while run.version < updates:  # the driver moves refs only: the arrays go worker → server
        (ready,), _ = ray.wait(list(run.in_flight), num_returns=1)
        w, read = run.in_flight.pop(ready)
        if not run.survived(w, read):
            continue
        run.ask_next(w, run.push(ready, read))
    run.settle()
    return run.finish()


@dataclass
class Coordinator:
    """The driver of `run_async`: the actors, the gradients in flight, the faults still to
    inject, and what the run has counted so far."""

    ray: Any
    server: Any  # the ServerActor's handle
    pool: list  # WorkerActor handles, by worker index
    faults: dict[int, str]  # server version → "worker" or "server"
    begin: float = field(default_factory=time.perf_counter)
    in_flight: dict = field(default_factory=dict)  # gradient ref → (worker, ref of its read)
    seq: int = 0
    version: int = 0
    lost: int = 0
    gradients: int = 0
    events: list[str] = field(default_factory=list)

    @classmethod
    def launch(cls, ray, initial: np.ndarray, factory: GradientFactory, workers: int, rule: str,
               lr: float, dc_lambda: float, checkpoint: str | None, every: int,
               faults: dict[int, str] | None) -> Coordinator:
        """The server actor (restarted once, from its checkpoint, when it has one) and
        `workers` worker actors (restarted whenever they die)."""
        server = ray.remote(num_cpus=0, max_restarts=1 if checkpoint else 0)(ServerActor).remote(
            initial, rule, lr, dc_lambda, checkpoint, every)
        remote_worker = ray.remote(num_cpus=0, max_restarts=-1)(WorkerActor)
        pool = [remote_worker.remote(factory, w) for w in range(workers)]
        return cls(ray, server, pool, dict(faults or {}))

    def ask(self, w: int, state, die: bool = False) -> None:
        """Send worker `w` the state to compute its next gradient at (`die`: exit instead)."""
        gradient, read = self.pool[w].compute.options(num_returns=2, max_task_retries=0).remote(
            state, self.seq, die)
        self.in_flight[gradient] = (w, read)
        self.seq += 1

    def survived(self, w: int, read) -> bool:
        """Whether worker `w` finished its gradient; if it died, the gradient is lost and the
        restarted worker is asked for a new one."""
        try:
            self.ray.get(read)  # small; raises when the worker died mid-gradient
            return True
        except self.ray.exceptions.RayActorError:
            self.lost += 1
            self.events.append(f"worker {w} died: its in-flight gradient is lost (noticed at "
                               f"version {self.version})")
            call_when_ready(self.ray, self.pool[w].pid.remote)
            self.ask(w, self.server.read.remote())
            return False

    def push(self, gradient, read):
        """Apply a gradient at the server; the ref of the state after it. If the server died,
        the gradient is lost and the state is the one it restarted from."""
        self.gradients += 1
        try:
            state, applied = self.server.push.options(num_returns=2).remote(gradient, read)
            self.version = self.ray.get(applied)
        except self.ray.exceptions.RayActorError:
            self.lost += 1  # the gradient pushed to the dead server
            state = call_when_ready(self.ray, self.server.read.remote)
            before, self.version = self.version, self.ray.get(state)[1]
            self.events.append(f"server died after version {before}; restarted from its "
                               f"checkpoint at version {self.version}")
        return state

    def ask_next(self, w: int, state) -> None:
        """Ask worker `w` again, injecting the fault due at this version, if any."""
        kill = self.faults.pop(self.version, None)
        self.ask(w, state, kill == "worker")
        if kill == "server":
            self.ray.kill(self.server, no_restart=False)

    def settle(self) -> None:
        """Gradients still in flight are not applied; those whose worker died count as lost."""
        settled, _ = self.ray.wait(list(self.in_flight), num_returns=len(self.in_flight),
                                   timeout=30)
        for ref in settled:
            try:
                self.ray.get(self.in_flight[ref][1])
            except self.ray.exceptions.RayActorError:
                self.lost += 1
                self.events.append(f"worker {self.in_flight[ref][0]} died: its in-flight "
                                   "gradient is lost (noticed at the end)")

    def finish(self) -> RayResult:
        """The server's final state; every actor killed."""
        final = self.ray.get(self.server.state.remote())
        params, _ = self.ray.get(self.server.read.remote())
        for actor in [self.server, *self.pool]:
            self.ray.kill(actor)
        return RayResult(np.array(params), final["version"], final["staleness"],
                         self.gradients, self.lost, time.perf_counter() - self.begin,
                         self.events)


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
