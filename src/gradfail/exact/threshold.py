"""Threshold units trained exactly: one unit by one LP (linear separability and the
maximum-margin separator; Lin & Vitter 1991), and the 3-node network of Blum & Rivest (1992),
two threshold units under an AND, by a MILP, with the set-splitting instances that make it
NP-hard."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gradfail.errors import ConfigError
from gradfail.exact.program import (
    Certificate,
    Program,
    check_labelled,
    check_time_limit,
    input_bounds,
)

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
