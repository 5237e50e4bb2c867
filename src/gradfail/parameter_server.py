"""Asynchronous SGD with a parameter server: an engine-free server core and a deterministic
event-driven simulator (spec `async_sgd_anchors.md` §4).

The server holds the flat parameters (one row per seed: seeds train as a batch under one shared
schedule of delays), a version counter and a ring buffer of recent versions. Workers get the
parameters with every call, so a worker keeps no state. The update rules are small pure
functions of (gradient, staleness τ, the parameters now and as the worker read them):

- `async`: Downpour's plain step (Dean et al. 2012);
- `adagrad`: Downpour with Adagrad's per-parameter step (Dean et al. 2012);
- `staleness`: the step α₀/max(τ, 1) (Zhang et al. 2016);
- `dc`: delay compensation g + λ·g⊙g⊙(w_now − w_read) (Zheng et al. 2017; λ = 0 is `async`).

Staleness is measured, never assumed: τ = the version a gradient is applied to minus the
version its worker read, logged per gradient.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from gradfail.errors import ConfigError

RULES = ("async", "adagrad", "staleness", "dc")
DELAYS = ("constant", "heterogeneous", "straggler")
GradientFn = Callable[[torch.Tensor, int, int], torch.Tensor]  # (params, worker, seq) → grad


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


# --------------------------------------------------------------------------------------------
# The server.


@dataclass
class ServerLogic:
    """Flat parameters (seeds, P), their version and the last `history` versions."""

    params: torch.Tensor
    rule: str
    lr: float
    dc_lambda: float = 0.04
    history: int = 64
    eps: float = 1e-8
    version: int = 0
    staleness: list[int] = field(default_factory=list)
    _buffer: dict[int, torch.Tensor] = field(default_factory=dict)
    _squares: torch.Tensor | None = None

    def __post_init__(self) -> None:
        require(self.rule in RULES, f"unknown update rule {self.rule!r}; choose one of "
                                    f"{', '.join(RULES)}")
        require(self.lr > 0, f"the step must be positive; got {self.lr}")
        require(self.history >= 1, f"the version history must hold at least 1; got "
                                   f"{self.history}")
        self._buffer[0] = self.params

    def restore(self, params: torch.Tensor, version: int, staleness: list[int]) -> None:
        """Back to a checkpoint: its parameters become the only version in the history."""
        self.params, self.version, self.staleness = params, version, staleness
        self._buffer = {version: params}

    def held(self, version: int) -> int:
        """`version` clamped to those the history holds (after a restore, a worker's read may
        be older than the checkpoint, or newer)."""
        return min(max(version, min(self._buffer)), self.version)

    def read(self) -> tuple[torch.Tensor, int]:
        """What a worker gets: the parameters (never modified in place) and their version."""
        return self.params, self.version

    def at(self, version: int) -> torch.Tensor:
        require(version in self._buffer, f"version {version} is older than the server's "
                                         f"history of {self.history}")
        return self._buffer[version]

    def step(self, gradient: torch.Tensor, read_version: int) -> torch.Tensor:
        """The update the rule makes for one gradient computed at `read_version`."""
        tau = self.version - read_version
        if self.rule == "staleness":
            return self.lr / max(tau, 1) * gradient
        if self.rule == "adagrad":
            self._squares = gradient**2 + (0 if self._squares is None else self._squares)
            return self.lr * gradient / (self._squares.sqrt() + self.eps)
        if self.rule == "dc":
            drift = self.params - self.at(read_version)
            return self.lr * (gradient + self.dc_lambda * gradient * gradient * drift)
        return self.lr * gradient

    def apply(self, gradients: list[tuple[torch.Tensor, int]]) -> None:
        """One update from one or more (gradient, read version) pairs, averaged (n-softsync and
        sync average; async applies one at a time); logs each gradient's staleness."""
        update = sum(self.step(g, v) for g, v in gradients) / len(gradients)
        self.staleness += [self.version - v for _, v in gradients]
        self.params = self.params - update
        self.version += 1
        self._buffer[self.version] = self.params
        self._buffer.pop(self.version - self.history - 1, None)


def staleness_summary(staleness: list[int]) -> dict:
    values = np.asarray(staleness, dtype=float)
    return {"mean": float(values.mean()), "p99": float(np.percentile(values, 99)),
            "max": int(values.max()), "histogram": np.bincount(values.astype(int)).tolist()}


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
