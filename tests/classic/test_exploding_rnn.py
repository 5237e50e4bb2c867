"""Exploding gradients in time: the adding problem, the Jacobian bound, the cliff, clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiments.classic import exploding_rnn

EXPERIMENT = registry.get("exploding_rnn")


def test_the_adding_problem_marks_one_value_in_each_half():
    x, y = exploding_rnn.adding_problem(2, 500, 30, torch.Generator().manual_seed(0))
    marks = x[..., 1]
    assert (marks.sum(-1) == 2).all()
    assert (marks[..., :15].sum(-1) == 1).all() and (marks[..., 15:].sum(-1) == 1).all()
    torch.testing.assert_close(y, (x[..., 0] * marks).sum(-1))
    assert abs(y.var().item() - exploding_rnn.BASELINE_MSE) < 0.03


def test_gradients_through_time_vanish_below_one_and_grow_above(cpu_context):
    config = EXPERIMENT.config("quick", {"init_scales": [0.5, 3.0], "init_lengths": [1, 10]})
    norms = np.asarray(exploding_rnn.jacobian_norms(config, cpu_context)["norms"])
    assert (norms[:, 0, 1] <= 0.5**10).all()  # the ρ^T bound
    assert (norms[:, 1, 1] > norms[:, 0, 1] * 1e3).all()


def test_the_one_unit_rnn_has_a_cliff(cpu_context):
    found = exploding_rnn.cliff(EXPERIMENT.config("quick"), cpu_context)
    jumps = np.abs(np.diff(np.asarray(found["loss"]), axis=1))  # between neighbouring b
    assert jumps.max() > 20 * np.median(jumps)  # a wall: the loss drops off a cliff


def test_clipping_bounds_each_models_step_and_leaves_small_gradients_alone():
    rho = torch.tensor([1.5, 1.5])
    params = [p.requires_grad_(True) for p in exploding_rnn.recurrent_parameters(
        "rnn", rho, 8, torch.Generator().manual_seed(0), torch.device("cpu"))]
    model = {"params": params, "clip": torch.tensor([math.inf, 1e-3])}
    before = [p.detach().clone() for p in params]
    x, y = exploding_rnn.adding_problem(2, 16, 12, torch.Generator().manual_seed(1))
    norms = exploding_rnn.sgd_step(model, x, y, lr=0.1)
    moved = torch.sqrt(sum((p.detach() - b).flatten(1).square().sum(1)
                           for p, b in zip(params, before)))
    torch.testing.assert_close(moved[0], 0.1 * norms[0])
    torch.testing.assert_close(moved[1], torch.tensor(0.1 * 1e-3))


def test_spikes_and_divergence_are_told_apart():
    validation = np.array([[1.0, 0.5, 0.4, 0.3], [1.0, 0.1, 2.0, 0.1], [1.0, 0.5, np.nan, np.nan]])
    found = exploding_rnn.outcomes(validation, spike=10.0)
    assert found["spiked"].tolist() == [False, True, False]
    assert found["diverged"].tolist() == [False, False, True]


def test_the_clipped_and_unclipped_arms_of_a_seed_start_from_the_same_weights(cpu_context):
    config = EXPERIMENT.config("quick", {"hidden": 4, "scales": [1.5]})
    grid = exploding_rnn.training_grid(config, cpu_context.n_seeds)
    rnn = exploding_rnn.models_of(grid, config, 10, cpu_context)["rnn"]
    rows = [grid[i] for i in rnn["index"]]
    for a, first in enumerate(rows):
        for b, second in enumerate(rows):
            same = all(torch.equal(p[a], p[b]) for p in rnn["params"])
            assert same == (first["seed"] == second["seed"])
    alone = exploding_rnn.models_of(exploding_rnn.learning_grid(config, cpu_context.n_seeds),
                                    config, 10, cpu_context)["rnn"]  # the learning part's
    clipped = [i for i, row in enumerate(rows) if math.isfinite(row["clip"])]
    assert torch.equal(alone["params"][0], rnn["params"][0][clipped])


def clipping_result(config, unclipped_failing: int, clipped_failing: int, seeds: int = 10):
    grid = exploding_rnn.training_grid(config, seeds)
    failed = np.zeros(len(grid), dtype=bool)
    for i, row in enumerate(grid):
        budget = clipped_failing if math.isfinite(row["clip"]) else unclipped_failing
        failed[i] = row["cell"] == "rnn" and row["rho"] > 1 and row["seed"] < budget
    return {"training": [{"grid": grid, "length": 50, "diverged": failed,
                          "spiked": np.zeros(len(grid), dtype=bool)}]}


@pytest.mark.parametrize("unclipped, clipped, verdict", [(9, 0, "holds"), (0, 9, "fails"),
                                                         (5, 4, "inconclusive")])
def test_clipping_is_judged_on_the_difference_of_failing_fractions(unclipped, clipped, verdict):
    config = EXPERIMENT.config("quick", {"scales": [0.9, 1.5]})
    check = exploding_rnn.check_clipping(config, clipping_result(config, unclipped, clipped))
    assert check.verdict == verdict


@pytest.mark.parametrize("learnt, steps, verdict", [
    (10, 2_000, "holds"),  # seen before the budget: holds at any budget
    (0, 2_000, "not checked"),  # not seen, and the run was shorter than the claim needs
    (0, 10_000, "fails"),
    (6, 10_000, "inconclusive"),
])
def test_learning_is_judged_on_the_fraction_below_the_constant_predictor(learnt, steps,
                                                                          verdict):
    config = EXPERIMENT.config("quick", {"learn_steps": steps})
    final = np.where(np.arange(10) < learnt, 0.01, 0.2)
    result = {"learning": [{"length": 50, "final_mse": final}]}
    assert exploding_rnn.check_clipped_learns(config, result).verdict == verdict


@pytest.mark.parametrize("changes, message", [
    ({"lengths": [0]}, "greater than 0"),
    ({"hidden": -1}, "greater than 0"),
    ({"init_scales": [-1.0]}, "greater than 0"),
    ({"clip": 0}, "greater than 0"),
    ({"lengths": "long"}, "valid integer"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
