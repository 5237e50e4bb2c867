"""Hogwild! (Niu, Recht, Ré & Wright 2011): lock-free SGD in shared memory on a sparse problem.

Processes share one weight vector (`share_memory_`) and update it in place without any lock;
on a sparse problem two updates rarely touch the same coordinate, so little is overwritten.
The problem is logistic regression on sparse synthetic data (each example a few non-zero
features out of many, labels from a planted separator), the RCV1-like regime of the paper.
Each process runs minibatch SGD on its own shard: gather the batch's weights, compute the
logistic gradient, `index_add_` it back, unlocked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.multiprocessing as mp

from gradfail.errors import ConfigError


@dataclass(frozen=True)
class SparseProblem:
    indices: torch.Tensor  # (n, nnz) feature ids
    values: torch.Tensor  # (n, nnz)
    labels: torch.Tensor  # (n,) ±1
    features: int

    def loss(self, weights: torch.Tensor) -> float:
        margins = self.labels * (weights[self.indices] * self.values).sum(1)
        return float(torch.nn.functional.softplus(-margins).mean())


def sparse_problem(examples: int, features: int, nonzeros: int, seed: int = 0) -> SparseProblem:
    """`examples` rows with `nonzeros` random features each, values N(0, 1), labels the sign
    of a planted N(0, 1) weight vector's score."""
    if min(examples, features, nonzeros) < 1 or nonzeros > features:
        raise ConfigError(f"a sparse problem needs positive sizes with nonzeros ≤ features; got "
                          f"{examples} examples, {features} features, {nonzeros} non-zeros")
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randint(features, (examples, nonzeros), generator=generator)
    values = torch.randn(examples, nonzeros, generator=generator)
    planted = torch.randn(features, generator=generator)
    labels = torch.sign((planted[indices] * values).sum(1) + 1e-12)
    return SparseProblem(indices, values, labels, features)


def sgd_shard(weights: torch.Tensor, problem: SparseProblem, rows: torch.Tensor, epochs: int,
              lr: float, batch: int) -> None:
    """Minibatch SGD over `rows`, writing into the shared `weights` without a lock."""
    torch.set_num_threads(1)
    for _ in range(epochs):
        for start in range(0, len(rows), batch):
            pick = rows[start:start + batch]
            index, value, label = problem.indices[pick], problem.values[pick], problem.labels[pick]
            margin = label * (weights[index] * value).sum(1)
            slope = -label * torch.sigmoid(-margin) / len(pick)  # ∂ mean softplus(−m) / ∂ score
            weights.index_add_(0, index.flatten(), (-lr * slope[:, None] * value).flatten())


def hogwild(problem: SparseProblem, processes: int, epochs: int = 1, lr: float = 0.5,
            batch: int = 16) -> dict:
    """Train with `processes` lock-free workers (forked), each on 1/processes of the data;
    returns samples/s, the final loss and the seconds."""
    if processes < 1:
        raise ConfigError(f"Hogwild needs at least 1 process; got {processes}")
    weights = torch.zeros(problem.features).share_memory_()
    shards = torch.arange(len(problem.labels)).chunk(processes)
    context = mp.get_context("fork")
    start = time.perf_counter()
    workers = [context.Process(target=sgd_shard, args=(weights, problem, shard, epochs, lr,
                                                       batch)) for shard in shards]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - start
    if any(worker.exitcode != 0 for worker in workers):
        raise ConfigError("a Hogwild worker process failed")
    return {"processes": processes, "samples_per_s": epochs * len(problem.labels) / seconds,
            "loss": problem.loss(weights), "seconds": seconds}


def timed_pairs(problem: SparseProblem, epochs: int, repeats: int) -> list[list[dict]]:
    """`repeats` pairs of runs, 1 process then 2 back to back, so that the two runs of a pair
    share the machine's load of their moment."""
    return [[hogwild(problem, k, epochs) for k in (1, 2)] for _ in range(repeats)]
