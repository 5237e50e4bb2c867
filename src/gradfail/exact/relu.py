"""One-hidden-layer ReLU networks certified by a MILP over their sign patterns (Arora et al.
2018), with a brute-force twin for tests."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

from gradfail.errors import ConfigError
from gradfail.exact.program import (
    Certificate,
    Program,
    check_inputs,
    check_time_limit,
    input_bounds,
    signed_labels,
)

MAX_RELU_WIDTH = 4  # the exact path enumerates sign patterns and N·H binaries; beyond 4 units
#                     even N = 10 points leave HiGHS's reach here (spec §A.3, §A.5)
RELU_LOSSES = ("l1", "hinge")


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
    so these width + 1 patterns cover every network (positive homogeneity)."""
    return [np.array([1.0] * p + [-1.0] * (width - p)) for p in range(width, -1, -1)]


def relu_program(x: np.ndarray, targets: np.ndarray, signs: np.ndarray, loss: str, box: float,
                 pattern: np.ndarray | None = None) -> tuple[Program, dict]:
    """The sign-pattern MILP for fixed output signs: h_nj = relu(w_j·x_n + b_j) by big-M
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
