"""Exact training of tiny networks: linear and mixed-integer programs that certify a global optimum.

A single threshold unit is a linear program; two threshold units under an AND (Blum & Rivest
1992) or a handful of ReLUs are mixed-integer programs, one binary per (sample, unit) for the
unit's state. Every program here is solved by HiGHS through `scipy.optimize.milp`. A solve that
stops at its time limit returns the best network found with the solver's proven lower bound and
is marked not certified: a bound is never reported as an optimum.

The certified class is always a box: every first-layer weight and bias in [−B, B] (spec
`exact_depth_anchors.md` §A.4; training is ∃ℝ-complete, so only a bounded class can be
certified, Abrahamsen et al. 2021).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, sparse

from gradfail.errors import ConfigError

MAX_RELU_WIDTH = 4  # the exact path enumerates sign patterns and N·H binaries; beyond 4 units
#                     even N = 10 points leave HiGHS's reach here (spec §A.3, §A.5)
RELU_LOSSES = ("l1", "hinge")
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
            found = optimize.milp(
                sign * c, integrality=np.array(self.integer),
                bounds=optimize.Bounds(self.lower, self.upper),
                constraints=optimize.LinearConstraint(matrix, np.concatenate(self._low),
                                                      np.concatenate(self._high)),
                options={"time_limit": time_limit, "mip_rel_gap": MIP_REL_GAP})
        seconds = time.perf_counter() - start
        status = {0: "optimal", 2: "infeasible"}.get(found.status, "time limit")
        if found.status not in (0, 1, 2):
            raise ConfigError(f"HiGHS could not solve the program: {found.message}")
        objective = sign * found.fun if found.x is not None else math.inf
        bound = getattr(found, "mip_dual_bound", None)
        if status == "optimal":
            bound = objective
        else:
            bound = -math.inf if bound is None or not math.isfinite(bound) else sign * bound
        if status == "infeasible":
            objective = bound = math.inf
        return Solved(found.x, float(objective), float(bound), status, seconds,
                      int(getattr(found, "mip_node_count", 0) or 0))


# --------------------------------------------------------------------------------------------
# One threshold unit: linear separability and the maximum-margin separator are one LP.


@dataclass(frozen=True)
class Separation:
    """The LP's answer: separable or not, exactly, and the best separator (w, b) with its
    ℓ∞ margin min t·(w·x + b) / ‖w‖₁ (0, at w = 0, when no hyperplane separates strictly)."""

    separable: bool
    margin: float
    weights: np.ndarray
    bias: float
    seconds: float


def separate(x, labels, time_limit: float = 60.0) -> Separation:
    """max γ s.t. t_n (w·x_n + b) ≥ γ, ‖w‖₁ ≤ 1: separable iff γ* > 0. The ℓ1 ball makes it
    an LP (w = u − v); γ* is the largest ℓ∞-distance margin of any separating hyperplane, and
    "separable" means γ* > 1e-9 in float64."""
    x, t = check_labelled(x, labels)
    program = Program()
    n, d = x.shape
    positive = program.variables(d, 0.0, np.inf)
    negative = program.variables(d, 0.0, np.inf)
    bias = program.variables(1, -np.inf, np.inf)
    margin = program.variables(1, -np.inf, 1.0)
    signed = t[:, None] * x
    program.constrain([(positive, signed), (negative, -signed), (bias, t), (margin, -1.0)],
                      low=0.0)
    program.constrain([(np.concatenate([positive, negative])[None], 1.0)], high=1.0)
    solved = program.solve([(margin, 1.0)], check_time_limit(time_limit), maximise=True)
    if solved.status != "optimal":
        raise ConfigError(f"the separability LP stopped at its {time_limit:g} s time limit")
    weights = solved.values[positive] - solved.values[negative]
    gamma = float(np.min(t * (x @ weights + solved.values[bias[0]])))  # re-evaluated
    return Separation(gamma > 1e-9, gamma, weights, float(solved.values[bias[0]]),
                      solved.seconds)


# --------------------------------------------------------------------------------------------
# Exact training as a MILP: the certificate it returns.


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


# --------------------------------------------------------------------------------------------
# The 3-node network of Blum & Rivest: two threshold units and an AND.


def three_node_output(network: dict, x: np.ndarray) -> np.ndarray:
    """±1: +1 exactly where both hidden threshold units fire (w_j·x + b_j > 0)."""
    pre = x @ np.asarray(network["w"]).T + np.asarray(network["b"])
    return np.where((pre > 0).all(1), 1.0, -1.0)


def three_node(x, labels, box: float, time_limit: float = 60.0) -> Certificate:
    """Fewest misclassified points of a 3-node network (two threshold units, AND output), by
    MILP: unit j fires on point n (a_nj = 1) iff w_j·x_n + b_j ≥ 1, else ≤ −1 (margin 1 is
    free: threshold units are scale-invariant, given a large enough box B); a positive point
    needs both units on, a negative one at most one, unless counted as an error."""
    x, t = check_labelled(x, labels)
    time_limit = check_time_limit(time_limit)
    n, d = x.shape
    big = input_bounds(x, box) + 1
    program = Program()
    w = program.variables((2, d), -box, box)
    b = program.variables(2, -box, box)
    fires = program.variables((n, 2), 0, 1, integer=True)
    error = program.variables(n, 0, 1, integer=True)
    for j in range(2):
        unit = [(w[j], x), (b[j], 1.0), (fires[:, j], -big)]
        program.constrain(unit, low=1 - big)  # fires ⇒ w·x + b ≥ 1
        program.constrain(unit, high=-1.0)  # silent ⇒ w·x + b ≤ −1
    pos, neg = t > 0, t < 0
    for j in range(2):
        program.constrain([(fires[pos, j], 1.0), (error[pos], 1.0)], low=1.0)
    program.constrain([(fires[neg, 0], 1.0), (fires[neg, 1], 1.0), (error[neg], -1.0)], high=1.0)
    program.constrain([(b[0], 1.0), (b[1], -1.0)], low=0.0)  # the units are interchangeable
    solved = program.solve([(error, 1.0)], time_limit)
    if solved.values is None:
        return Certificate(math.inf, max(solved.bound, 0.0), False, solved.seconds, solved.nodes)
    network = {"w": solved.values[w], "b": solved.values[b]}
    errors = float((three_node_output(network, x) != t).sum())
    bound = math.ceil(solved.bound - 1e-6)  # the count is an integer
    return Certificate(errors, float(max(bound, 0)), solved.status == "optimal" and
                       errors <= bound, solved.seconds, solved.nodes, network)


def splittable(n_elements: int, clauses: Sequence[Sequence[int]]) -> bool:
    """Set splitting by brute force: can the elements be 2-coloured so that no clause is
    monochromatic? (2^(n−1) colourings; fine for the n ≤ 12 used here.)"""
    members = np.zeros((len(clauses), n_elements), dtype=bool)
    for row, clause in enumerate(clauses):
        members[row, list(clause)] = True
    colourings = np.array(list(itertools.product((False, True), repeat=n_elements - 1)))
    colourings = np.hstack([np.zeros((len(colourings), 1), dtype=bool), colourings])
    in_first = colourings.astype(int) @ members.T.astype(int)  # (colourings, clauses)
    sizes = members.sum(1)
    return bool(((in_first > 0) & (in_first < sizes)).all(1).any())


def splitting_training_set(n_elements: int, clauses: Sequence[Sequence[int]]
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Blum & Rivest's reduction: the origin positive, each unit vector e_i negative, each
    clause's indicator vector positive. A 3-node network (AND output) is consistent with these
    points exactly when the clauses have a splitting."""
    points = [np.zeros(n_elements)] + list(np.eye(n_elements))
    for clause in clauses:
        points.append(np.isin(np.arange(n_elements), list(clause)).astype(float))
    labels = np.array([1.0] + [-1.0] * n_elements + [1.0] * len(clauses))
    return np.array(points), labels


def splitting_box(n_elements: int) -> float:
    """B = 2n is enough for the reduction at margin 1: a splitting (S1, S2) gives the units
    w_i = −2 on S1 and 2n on S2 (and the mirror), b = 1."""
    return 2.0 * n_elements


# --------------------------------------------------------------------------------------------
# One-hidden-layer ReLU networks, certified.


def relu_output(network: dict, x: np.ndarray) -> np.ndarray:
    """f(x) = Σ_j s_j·relu(w_j·x + b_j) + c (output weights ±1 after rescaling)."""
    hidden = np.maximum(x @ np.asarray(network["w"]).T + np.asarray(network["b"]), 0.0)
    return hidden @ np.asarray(network["s"]) + float(network["c"])


def relu_loss(outputs: np.ndarray, targets: np.ndarray, loss: str) -> np.ndarray:
    """Summed L1 (|f − t|) or hinge (max(0, 1 − t·f)) loss over the last axis."""
    if loss == "l1":
        return np.abs(outputs - targets).sum(-1)
    return np.maximum(0.0, 1 - targets * outputs).sum(-1)


def check_relu_problem(x, targets, width: int, loss: str) -> tuple[np.ndarray, np.ndarray]:
    if loss not in RELU_LOSSES:
        raise ConfigError(f"unknown exact loss {loss!r}; choose one of {', '.join(RELU_LOSSES)}")
    if not 1 <= width <= MAX_RELU_WIDTH:
        raise ConfigError(f"the exact path supports 1 to {MAX_RELU_WIDTH} ReLU units; got "
                          f"width {width}")
    x, targets = check_inputs(x, targets)
    if loss == "hinge":
        targets = signed_labels(targets)
    return x, targets


def sign_patterns(width: int) -> list[np.ndarray]:
    """Output signs s with p positive units first, p = width … 0: units are interchangeable,
    so these width + 1 patterns cover every network (positive homogeneity, spec §A.4.1)."""
    return [np.array([1.0] * p + [-1.0] * (width - p)) for p in range(width, -1, -1)]


def relu_program(x: np.ndarray, targets: np.ndarray, signs: np.ndarray, loss: str, box: float,
                 pattern: np.ndarray | None = None) -> tuple[Program, dict]:
    """The MILP of spec §A.4.1 for fixed output signs: h_nj = relu(w_j·x_n + b_j) by big-M
    rows with a binary a_nj per (point, unit), or, given an activation `pattern`, the LP in
    which a is fixed to it (Arora et al. 2018's view: the pattern fixed, training is convex)."""
    n, d = x.shape
    width = len(signs)
    big = input_bounds(x, box)
    program = Program()
    w = program.variables((width, d), -box, box)
    b = program.variables(width, -box, box)
    c = program.variables(1, -np.inf, np.inf)
    error = program.variables(n, 0.0, np.inf)
    if pattern is None:
        h = program.variables((n, width), 0.0, np.inf)
        on = program.variables((n, width), 0, 1, integer=True)
        for j in range(width):
            pre = [(w[j], -x), (b[j], -1.0)]
            program.constrain([(h[:, j], 1.0), *pre], low=0.0)  # h ≥ pre
            program.constrain([(h[:, j], 1.0), *pre, (on[:, j], big)], high=big)  # h ≤ pre + M(1−a)
            program.constrain([(h[:, j], 1.0), (on[:, j], -big)], high=0.0)  # h ≤ M·a
        output = [(h, np.broadcast_to(signs, (n, width)))]
    else:
        output = []
        for j in range(width):
            active = pattern[:, j].astype(bool)
            pre = [(w[j], x), (b[j], 1.0)]
            program.constrain(pre, low=np.where(active, 0.0, -np.inf),
                              high=np.where(active, np.inf, 0.0))
            output += [(np.broadcast_to(w[j], (n, d)), signs[j] * active[:, None] * x),
                       (np.full((n, 1), b[j]), signs[j] * active[:, None] * 1.0)]
    output.append((np.full((n, 1), c[0]), np.ones((n, 1))))  # every output term is (n, k)
    if loss == "l1":
        program.constrain([(error, 1.0), *[(i, -k) for i, k in output]], low=-targets)
        program.constrain([(error, 1.0), *output], low=targets)
    else:
        program.constrain([(error, 1.0), *[(i, targets[:, None] * k) for i, k in output]],
                          low=1.0)
    for j in range(width - 1):  # units of one sign are interchangeable: sort them by bias
        if signs[j] == signs[j + 1]:
            program.constrain([(b[j], 1.0), (b[j + 1], -1.0)], low=0.0)
    return program, {"w": w, "b": b, "c": c, "error": error}


def certify_relu(x, targets, width: int, loss: str = "l1", box: float = 2.0,
                 time_limit: float = 60.0) -> Certificate:
    """The global optimum of Σ loss over one-hidden-layer ReLU nets with `width` units whose
    first-layer weights and biases lie in [−box, box], output weights ±1, any output bias
    (every net with |v_j|·max(‖w_j‖∞, |b_j|) ≤ B, rescaled). One MILP per sign pattern; the
    time limit is for all of them together."""
    x, targets = check_relu_problem(x, targets, width, loss)
    deadline = time.perf_counter() + check_time_limit(time_limit)
    best, network, bound, certified, seconds, nodes = math.inf, {}, math.inf, True, 0.0, 0
    for signs in sign_patterns(width):
        if best <= 1e-9:  # a zero loss is optimal whatever the other patterns hold
            break
        left = deadline - time.perf_counter()
        if left <= 0:
            certified, bound = False, 0.0
            break
        program, index = relu_program(x, targets, signs, loss, box)
        solved = program.solve([(index["error"], 1.0)], left)
        seconds += solved.seconds
        nodes += solved.nodes
        bound = min(bound, max(solved.bound, 0.0))
        certified &= solved.status == "optimal"
        if solved.values is not None:
            found = {"w": solved.values[index["w"]], "b": solved.values[index["b"]],
                     "c": solved.values[index["c"]][0], "s": signs}
            value = float(relu_loss(relu_output(found, x), targets, loss))
            if value < best:
                best, network = value, found
    bound = min(bound, best)
    return Certificate(best, bound, certified, seconds, nodes, network)


def fit_pattern(x, targets, signs, pattern, loss: str, box: float) -> float:
    """The least loss of any net in the box with these output signs and this activation
    pattern (an LP; inf when no net has the pattern): polishes a gradient-descent solution."""
    x, targets = check_relu_problem(x, targets, len(signs), loss)
    program, index = relu_program(x, targets, np.asarray(signs, dtype=float), loss, box,
                                  np.asarray(pattern))
    return program.solve([(index["error"], 1.0)], 60.0).objective


def brute_force_relu(x, targets, width: int, loss: str = "l1", box: float = 2.0) -> float:
    """The optimum by enumeration, for 1-D inputs: a unit's activation pattern on sorted
    points is a prefix or a suffix (2(n + 1) patterns), one LP per combination and sign
    pattern. Exponential in the width; the cross-check for `certify_relu` on the smallest cases."""
    x, targets = check_relu_problem(x, targets, width, loss)
    if x.shape[1] != 1:
        raise ConfigError("the brute-force check enumerates 1-D patterns; x must have one column")
    order = np.argsort(x[:, 0])
    n = len(x)
    unit_patterns = set()
    for cut in range(n + 1):
        suffix = np.zeros(n, dtype=int)
        suffix[order[cut:]] = 1
        unit_patterns |= {tuple(suffix), tuple(1 - suffix)}
    unit_patterns = [np.array(p) for p in sorted(unit_patterns)]
    return min(fit_pattern(x, targets, signs, np.stack(combo, 1), loss, box)
               for signs in sign_patterns(width)
               for combo in itertools.product(unit_patterns, repeat=width))
