"""Exact training's shared pieces: the (MI)LP builder for scipy's HiGHS (`Program`, `Solved`),
the input checks every exact problem makes, and the `Certificate` a solve returns.

A solve that stops at its time limit returns the best network found with the solver's proven
lower bound and is marked not certified: a bound is never reported as an optimum (the package's
docstring, gradfail.exact, says what is certified and why a box).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, sparse

from gradfail.errors import ConfigError

MIP_REL_GAP = 1e-6  # HiGHS's default 1e-4 would call a solution 0.01% from optimal "optimal"


# --------------------------------------------------------------------------------------------
# Input checks shared by every exact problem.


def check_inputs(x, targets) -> tuple[np.ndarray, np.ndarray]:
    """(x as (n, d) float64, targets as (n,) float64), or a one-line error."""
    x = np.asarray(x, dtype=float)
    targets = np.asarray(targets, dtype=float)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ConfigError(f"exact training needs a non-empty (points, features) array; got "
                          f"shape {x.shape}")
    if targets.shape != (x.shape[0],):
        raise ConfigError(f"{x.shape[0]} points but targets of shape {targets.shape}")
    if not (np.isfinite(x).all() and np.isfinite(targets).all()):
        raise ConfigError("exact training needs finite inputs and targets (found NaN or inf)")
    return x, targets


def check_labelled(x, labels) -> tuple[np.ndarray, np.ndarray]:
    """(x, labels as ±1) for the threshold problems, or a one-line error."""
    x, labels = check_inputs(x, labels)
    return x, signed_labels(labels)


def signed_labels(labels) -> np.ndarray:
    """Binary labels as ±1: {0, 1} and {−1, +1} are accepted, anything else is an error."""
    labels = np.asarray(labels, dtype=float)
    values = set(np.unique(labels).tolist())
    if values <= {-1.0, 1.0}:
        return labels
    if values <= {0.0, 1.0}:
        return 2 * labels - 1
    shown = ", ".join(f"{v:g}" for v in sorted(values)[:5])
    raise ConfigError(f"threshold and hinge problems need binary labels (0/1 or ±1); got {shown}")


def check_time_limit(time_limit: float) -> float:
    if not time_limit > 0:
        raise ConfigError(f"the time limit must be positive seconds; got {time_limit}")
    return float(time_limit)


@contextlib.contextmanager
def native_stdout_silenced():
    """File descriptor 1 to /dev/null: scipy's HiGHS prints debug lines from C++ (e.g.
    "transformNewIntegerFeasibleSolution") that no Python setting turns off."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


# --------------------------------------------------------------------------------------------
# A small builder for linear programs with named variable blocks and vectorised rows.


@dataclass
class Solved:
    """One HiGHS solve: the values (None when nothing feasible was found), the objective, the
    proven lower bound, the status and the cost."""

    values: np.ndarray | None
    objective: float
    bound: float
    status: str  # "optimal", "infeasible" or "time limit"
    seconds: float
    nodes: int


@dataclass
class Program:
    """A (mixed-integer) linear program under construction: `variables` returns index arrays,
    `constrain` adds a block of rows Σ coefficient·variable ∈ [low, high] at once."""

    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    integer: list[int] = field(default_factory=list)
    _rows: list[np.ndarray] = field(default_factory=list)
    _columns: list[np.ndarray] = field(default_factory=list)
    _coefficients: list[np.ndarray] = field(default_factory=list)
    _low: list[np.ndarray] = field(default_factory=list)
    _high: list[np.ndarray] = field(default_factory=list)
    _n_rows: int = 0

    def variables(self, shape, low: float, high: float, integer: bool = False) -> np.ndarray:
        count = math.prod(shape) if isinstance(shape, tuple) else shape
        start = len(self.lower)
        self.lower += [low] * count
        self.upper += [high] * count
        self.integer += [int(integer)] * count
        return np.arange(start, start + count).reshape(shape)

    def constrain(self, terms: Sequence[tuple], low=-np.inf, high=np.inf) -> None:
        """Rows r: Σ_terms Σ_k coefficient[r, k]·x[index[r, k]] ∈ [low_r, high_r]. Each term is
        (index, coefficient), broadcast together to (rows, k); a 1-D term is one entry a row,
        a scalar the same entry in every row."""
        blocks = []
        for index, coefficient in terms:
            index, coefficient = np.broadcast_arrays(np.asarray(index),
                                                     np.asarray(coefficient, dtype=float))
            if index.ndim < 2:
                index, coefficient = index.reshape(-1, 1), coefficient.reshape(-1, 1)
            blocks.append((index, coefficient))
        if any(index.shape[0] == 0 for index, _ in blocks):
            return  # rows over an empty set of points: nothing to constrain
        n = max([index.shape[0] for index, _ in blocks] + [np.size(low), np.size(high)])
        rows = np.arange(self._n_rows, self._n_rows + n)
        for index, coefficient in blocks:
            shape = (n, index.shape[1])
            self._rows.append(np.repeat(rows, shape[1]))
            self._columns.append(np.broadcast_to(index, shape).ravel())
            self._coefficients.append(np.broadcast_to(coefficient, shape).ravel())
        self._low.append(np.broadcast_to(np.asarray(low, dtype=float), n))
        self._high.append(np.broadcast_to(np.asarray(high, dtype=float), n))
        self._n_rows += n

    def solve(self, cost: Sequence[tuple], time_limit: float, maximise: bool = False
              ) -> Solved:
        """Minimise (or maximise) Σ coefficient·variable over `cost` = [(index, coefficient)]."""
        c = np.zeros(len(self.lower))
        for index, coefficient in cost:
            np.add.at(c, np.asarray(index).ravel(), coefficient)
        sign = -1.0 if maximise else 1.0
        matrix = sparse.csr_array(
            (np.concatenate(self._coefficients), (np.concatenate(self._rows),
                                                  np.concatenate(self._columns))),
            shape=(self._n_rows, len(self.lower)))
        start = time.perf_counter()
        with native_stdout_silenced():
            solution = optimize.milp(
                sign * c, integrality=np.array(self.integer),
                bounds=optimize.Bounds(self.lower, self.upper),
                constraints=optimize.LinearConstraint(matrix, np.concatenate(self._low),
                                                      np.concatenate(self._high)),
                options={"time_limit": time_limit, "mip_rel_gap": MIP_REL_GAP})
        seconds = time.perf_counter() - start
        status = {0: "optimal", 2: "infeasible"}.get(solution.status, "time limit")
        if solution.status not in (0, 1, 2):
            raise ConfigError(f"HiGHS could not solve the program: {solution.message}")
        objective = sign * solution.fun if solution.x is not None else math.inf
        bound = getattr(solution, "mip_dual_bound", None)
        if status == "optimal":
            bound = objective
        else:
            bound = -math.inf if bound is None or not math.isfinite(bound) else sign * bound
        if status == "infeasible":
            objective = bound = math.inf
        return Solved(solution.x, float(objective), float(bound), status, seconds,
                      int(getattr(solution, "mip_node_count", 0) or 0))


@dataclass(frozen=True)
class Certificate:
    """What an exact solve proved. `loss` is the best network's loss re-evaluated in float64
    (an upper bound on the optimum), `bound` the proven lower bound; `certified` only when
    every sub-problem was solved to optimality, and then loss = optimum (up to 1e-6 relative)."""

    loss: float
    bound: float
    certified: bool
    seconds: float
    nodes: int
    network: dict = field(default_factory=dict)

    @property
    def gap(self) -> float:
        return self.loss - self.bound

    def as_dict(self) -> dict:
        return {"loss": self.loss, "bound": self.bound, "certified": self.certified,
                "seconds": self.seconds, "nodes": self.nodes,
                "network": {k: np.asarray(v).tolist() for k, v in self.network.items()}}


def input_bounds(x: np.ndarray, box: float) -> np.ndarray:
    """M_n = B(‖x_n‖₁ + 1): the largest |w·x_n + b| over the box, the tightest valid big-M."""
    return box * (np.abs(x).sum(1) + 1)
