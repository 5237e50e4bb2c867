"""gradfail.exact: the LP and MILPs certify what brute force finds, and refuse bad input."""

from __future__ import annotations

import numpy as np
import pytest

from gradfail.errors import ConfigError
from gradfail.exact.relu import brute_force_relu, certify_relu, fit_pattern, relu_loss, relu_output
from gradfail.exact.threshold import (
    separate,
    splittable,
    splitting_box,
    splitting_training_set,
    three_node,
    three_node_output,
)

AND = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


def test_the_lp_separates_and_but_not_xor():
    separable = separate(AND, [-1, -1, -1, 1])
    assert separable.separable and separable.margin > 0
    assert (np.sign(AND @ separable.weights + separable.bias) == [-1, -1, -1, 1]).all()
    xor = separate(AND, [0, 1, 1, 0])
    assert not xor.separable and abs(xor.margin) < 1e-9


def test_a_negative_inside_the_positives_hull_costs_the_3_node_net_one_error():
    """AND of two half-planes is convex: a negative inside the positives' triangle must be
    misclassified, and the solver proves that no net does better."""
    x = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 2.0], [1.0, 0.5]])
    found = three_node(x, [1, 1, 1, 0], box=20.0)
    assert found.certified and found.loss == 1 and found.bound == 1


def test_xor_is_loadable_by_a_3_node_net():
    found = three_node(AND, [0, 1, 1, 0], box=20.0)
    assert found.certified and found.loss == 0
    assert (three_node_output(found.network, AND) == [-1, 1, 1, -1]).all()


def test_set_splitting_by_brute_force():
    assert not splittable(3, [[0, 1], [1, 2], [0, 2]])  # an odd cycle
    assert splittable(3, [[0, 1], [1, 2]])


@pytest.mark.parametrize("clauses, splits", [
    ([[0, 1], [1, 2], [0, 2]], False),
    ([[0, 1, 2], [1, 2, 3], [0, 3, 4], [2, 3, 4]], True),
    ([[0, 1], [1, 2], [2, 3], [3, 0]], True),
])
def test_the_reduction_loads_exactly_the_splittable_instances(clauses, splits):
    n = 1 + max(max(c) for c in clauses)
    x, labels = splitting_training_set(n, clauses)
    found = three_node(x, labels, splitting_box(n))
    assert found.certified and (found.loss == 0) == splits == splittable(n, clauses)


@pytest.mark.parametrize("loss", ["l1", "hinge"])
@pytest.mark.parametrize("width", [1, 2])
def test_the_milp_optimum_matches_brute_force_over_activation_patterns(loss, width):
    rng = np.random.default_rng(width)
    x = rng.uniform(-1, 1, (6, 1))
    targets = np.abs(x[:, 0]) - 0.4 + 0.2 * rng.normal(size=6)
    if loss == "hinge":
        targets = np.where(targets > 0, 1.0, -1.0)
    found = certify_relu(x, targets, width, loss)
    assert found.certified
    assert found.loss == pytest.approx(brute_force_relu(x, targets, width, loss), abs=1e-6)
    assert found.loss == pytest.approx(
        relu_loss(relu_output(found.network, x), targets, loss), abs=1e-9)


def test_a_wider_net_never_has_a_larger_certified_optimum():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (8, 2))
    targets = np.sin(3 * x[:, 0]) * x[:, 1]
    losses = [certify_relu(x, targets, width, "l1").loss for width in (1, 2)]
    assert losses[1] <= losses[0] + 1e-6 and losses[0] > 0


def test_polishing_a_network_by_its_activation_pattern_never_raises_its_loss():
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (10, 2))
    targets = rng.normal(size=10)
    network = {"w": rng.uniform(-1, 1, (2, 2)), "b": rng.uniform(-1, 1, 2), "c": 0.1,
               "s": np.array([1.0, -1.0])}
    pattern = (x @ network["w"].T + network["b"] > 0).astype(int)
    before = relu_loss(relu_output(network, x), targets, "l1")
    assert fit_pattern(x, targets, network["s"], pattern, "l1", 2.0) <= before + 1e-9


def test_a_solve_cut_by_its_time_limit_is_not_called_optimal():
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (40, 2))
    found = certify_relu(x, rng.choice([-1.0, 1.0], 40), 2, "hinge", time_limit=0.5)
    assert not found.certified and found.bound <= found.loss and found.gap > 0


@pytest.mark.parametrize("call, message", [
    (lambda: three_node(AND, [0, 1, 2, 1], box=5), "binary labels"),
    (lambda: separate(AND, [0.5, 1, 1, 0]), "binary labels"),
    (lambda: certify_relu(AND, [0, 1, 2, 1], 2, "hinge"), "binary labels"),
    (lambda: certify_relu(np.zeros((0, 2)), [], 2), "non-empty"),
    (lambda: certify_relu(AND, [0, 1, 1, 0], 5), "1 to 4 ReLU units"),
    (lambda: certify_relu(AND, [0, 1, 1, 0], 2, time_limit=0), "time limit must be "
     "positive"),
    (lambda: three_node(AND, [0, 1, 1, 0], box=5, time_limit=-1), "time limit"),
    (lambda: certify_relu(AND, [0, 1, 1, 0], 2, "squared"), "unknown exact loss"),
    (lambda: certify_relu(AND, [0, 1, np.nan, 0], 2), "finite"),
    (lambda: separate(AND, [0, 1, 1]), "4 points but targets"),
])
def test_bad_input_is_a_one_line_error(call, message):
    with pytest.raises(ConfigError, match=message) as raised:
        call()
    assert "\n" not in str(raised.value)
