"""§5: the step link, its smoothing, the forward-only rule, the ranking of the approaches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiment import RunContext
from gradfail.experiments.paper import flat_activation

EXPERIMENT = registry.get("flat_activation")


def test_the_code_has_52_breakpoints_and_u_rounds_down():
    assert len(flat_activation.CODE_BREAKPOINTS) == 52  # spec §4.1: not the paper's 56
    breakpoints = torch.tensor([[0.0, 1.0, 2.5]])
    r = torch.tensor([[0.0, 0.99, 1.0, 2.4, 7.0, -3.0]])
    assert flat_activation.step_link(r, breakpoints).tolist() == [[0, 0, 1, 1, 2.5, 0]]
    assert flat_activation.step_class(r, breakpoints).tolist() == [[0, 0, 1, 1, 2, 0]]


def test_the_smoothed_link_follows_u_away_from_the_steps_and_is_flat_there():
    breakpoints = torch.tensor([[0.0, 1.0, 2.0]])
    r = torch.tensor([[0.5, 1.5]], requires_grad=True)
    smooth = flat_activation.smoothed_link(r, breakpoints)
    torch.testing.assert_close(smooth, torch.tensor([[0.0, 1.0]]), atol=1e-6, rtol=0)
    (slope,) = torch.autograd.grad(smooth.sum(), r)
    assert slope.abs().max() < 1e-6  # mid-gap the surrogate's gradient vanishes too


def test_exact_u_gives_no_gradient_and_forward_only_does():
    breakpoints = torch.tensor([[0.0, 1.0, 2.0]])
    r = torch.tensor([[0.3, 1.7]], requires_grad=True)
    assert not flat_activation.step_link(r, breakpoints).requires_grad  # the failure: u' = 0
    passed = r + (flat_activation.step_link(r, breakpoints) - r).detach()
    (straight,) = torch.autograd.grad(passed.sum(), r)
    assert straight.tolist() == [[1.0, 1.0]]


def test_multi_class_beats_end_to_end_regression():
    config = EXPERIMENT.config("quick")
    ctx = RunContext(torch.device("cpu"), seed=0, n_seeds=3)
    multi = flat_activation.train(config, "multi-class", ctx)
    regression = flat_activation.train(config, "end-to-end", ctx)
    assert np.median(multi["off"]) < 0.05
    assert np.median(regression["off"]) > 2 * np.median(multi["off"])


def test_forward_only_learns_the_step_exactly_given_its_budget():
    config = EXPERIMENT.config("quick", {"forward_steps": 5_000})
    run = flat_activation.train(config, "forward-only", RunContext(torch.device("cpu"), 0, 3))
    assert np.median(run["off"]) < 0.02


def test_forward_only_error_falls_with_steps_on_a_lipschitz_link(cpu_context):
    config = EXPERIMENT.config("quick", {"guarantee_steps": [30, 1_000]})
    measured = flat_activation.guarantee(config, cpu_context)["Lipschitz tanh(L·r)"]
    early, late = np.asarray(measured["average_error"]).T
    assert (late < early).all()
    assert (np.asarray(measured["bound"])[:, 1] < np.asarray(measured["bound"])[:, 0]).all()


@pytest.mark.parametrize("changes, message", [
    ({"breakpoints": [0, 2, 1]}, "strictly increasing"),
    ({"breakpoints": [0, 1, 1]}, "strictly increasing"),
    ({"d": 0}, "greater than 0"),
    ({"lr": 0}, "greater than 0"),
    ({"smoothed_lr": -1}, "greater than 0"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)


def test_a_custom_link_is_learned_by_the_forward_only_rule():
    config = EXPERIMENT.config("quick", {"breakpoints": [-1.0, -0.1, 0.0, 0.05, 0.3],
                                         "forward_steps": 5_000})
    run = flat_activation.train(config, "forward-only", RunContext(torch.device("cpu"), 1, 2))
    assert np.median(run["off"]) < 0.05
