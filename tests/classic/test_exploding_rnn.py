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


def test_quick_run_separates_clipped_from_unclipped(quick_store):
    (run,) = quick_store.runs(experiment="exploding_rnn")
    verdicts = {c["name"]: c["verdict"] for c in run["claims"]}
    assert verdicts["ρ > 1: unclipped SGD diverges or spikes, clipped does not"] == "holds"
    assert verdicts["clipped, the RNN learns the task"] == "not checked"  # 300 of 10k steps


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
