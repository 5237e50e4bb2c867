"""A deterministic event-driven simulator of asynchronous SGD around `ServerLogic`: seeded
compute-time models, Downpour / n-softsync, synchronous SGD with backup workers, a fixed delay;
and `Quadratic`, a picklable gradient for tests and benchmarks on real workers."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from gradfail.distributed.server import GradientFn, ServerLogic, require

DELAYS = ("constant", "heterogeneous", "straggler")


# --------------------------------------------------------------------------------------------
# Delay models: each worker's compute time for each task, seeded.


@dataclass(frozen=True)
class Delays:
    """Compute times: `constant` (1 ± jitter), `heterogeneous` (worker speed factors in
    [0.5, 1.5]) or `straggler` (probability p of a task being k× slower)."""

    model: str = "constant"
    jitter: float = 0.1
    straggler_p: float = 0.05
    straggler_k: float = 5.0

    def __post_init__(self) -> None:
        require(self.model in DELAYS, f"unknown delay model {self.model!r}; choose one of "
                                      f"{', '.join(DELAYS)}")
        require(self.jitter >= 0 and self.straggler_k >= 1 and 0 <= self.straggler_p <= 1,
                "delays must be non-negative (jitter ≥ 0, straggler k ≥ 1, 0 ≤ p ≤ 1)")

    def sampler(self, workers: int, rng: np.random.Generator) -> Callable[[int], float]:
        speed = rng.uniform(0.5, 1.5, workers) if self.model == "heterogeneous" else np.ones(
            workers)

        def draw(worker: int) -> float:
            time = speed[worker] * (1 + self.jitter * rng.uniform(-1, 1))
            if self.model == "straggler" and rng.random() < self.straggler_p:
                time *= self.straggler_k
            return float(time)
        return draw


# --------------------------------------------------------------------------------------------
# The simulator: a virtual clock, a heap of finishing workers, bit-for-bit reproducible.


@dataclass
class SimResult:
    server: ServerLogic
    clock: float
    gradients: int
    dropped: int
    step_times: list[float]


def simulate_async(server: ServerLogic, gradient: GradientFn, workers: int, updates: int,
                   delays: Delays, rng: np.random.Generator, per_update: int = 1,
                   on_update: Callable[[ServerLogic, float], None] | None = None,
                   failures: frozenset[int] = frozenset()) -> SimResult:
    """Downpour (per_update = 1) or n-softsync (per_update = c = ⌊workers/n⌋ gradients a
    step): every worker reads, computes for its drawn delay, pushes, reads again. A worker
    whose task number is in `failures` dies mid-gradient: the gradient is lost, the worker
    (stateless) restarts and reads again; `dropped` counts them."""
    require(workers >= 1, f"the number of workers must be at least 1; got {workers}")
    require(1 <= per_update <= workers, "gradients per update must be between 1 and workers")
    draw = delays.sampler(workers, rng)
    events, seq, waiting, count = [], 0, [], 0
    for worker in range(workers):
        params, version = server.read()
        heapq.heappush(events, (draw(worker), seq, worker, version, params))
        seq += 1
    clock, dropped = 0.0, 0
    while server.version < updates:
        clock, task, worker, version, params = heapq.heappop(events)
        if task in failures:
            dropped += 1
            params, version = server.read()
            heapq.heappush(events, (clock + draw(worker), seq, worker, version, params))
            seq += 1
            continue
        waiting.append((gradient(params, worker, count), version))
        count += 1
        if len(waiting) == per_update:
            server.apply(waiting)
            waiting = []
            if on_update is not None:
                on_update(server, clock)
        params, version = server.read()
        heapq.heappush(events, (clock + draw(worker), seq, worker, version, params))
        seq += 1
    return SimResult(server, clock, count, dropped, [])


def simulate_sync(server: ServerLogic, gradient: GradientFn, workers: int, backups: int,
                  updates: int, delays: Delays, rng: np.random.Generator,
                  on_update: Callable[[ServerLogic, float], None] | None = None) -> SimResult:
    """Synchronous SGD with backup workers (Chen et al. 2016): workers + backups compute on
    the same version; the first `workers` gradients are averaged, the rest dropped. A step
    lasts the `workers`-th smallest compute time."""
    require(workers >= 1, f"the number of workers must be at least 1; got {workers}")
    require(backups >= 0, f"backup workers must be non-negative; got {backups}")
    draw = delays.sampler(workers + backups, rng)
    clock, count, dropped, step_times = 0.0, 0, 0, []
    while server.version < updates:
        params, version = server.read()
        times = np.array([draw(w) for w in range(workers + backups)])
        first = np.argsort(times, kind="stable")[:workers]
        grads = [(gradient(params, int(w), count + i), version) for i, w in enumerate(first)]
        count += workers
        dropped += backups
        step_times.append(float(times[first].max()))
        clock += step_times[-1]
        server.apply(grads)
        if on_update is not None:
            on_update(server, clock)
    return SimResult(server, clock, count, dropped, step_times)


def simulate_fixed_delay(server: ServerLogic, gradient: GradientFn, tau: int, updates: int,
                         on_update: Callable[[ServerLogic, float], None] | None = None
                         ) -> SimResult:
    """Update t applies the gradient at w_{t−τ} (Dai et al. 2019's simulated staleness)."""
    require(tau >= 0, f"the delay τ must be non-negative; got {tau}")
    require(server.history > tau, f"the version history ({server.history}) must exceed τ")
    for t in range(updates):
        read = max(0, t - tau)
        server.apply([(gradient(server.at(read), 0, t), read)])
        if on_update is not None:
            on_update(server, float(t + 1))
    return SimResult(server, float(updates), updates, 0, [])


@dataclass(frozen=True)
class Quadratic:
    """A picklable gradient factory for tests and benchmarks on real workers: the gradient of
    ½ Σ_i h_i w_i², curvatures h evenly from 0.5 to 2, each taking `seconds` (slept) to compute."""

    size: int
    seconds: float = 0.0

    def curvature(self) -> torch.Tensor:
        return torch.linspace(0.5, 2.0, self.size)

    def __call__(self, worker: int = 0) -> GradientFn:
        curvature = self.curvature()

        def gradient(params: torch.Tensor, worker: int, seq: int) -> torch.Tensor:
            if self.seconds:
                time.sleep(self.seconds)
            return params * curvature
        return gradient

    def loss(self, params) -> float:
        return float((0.5 * self.curvature() * torch.as_tensor(params) ** 2).sum())
