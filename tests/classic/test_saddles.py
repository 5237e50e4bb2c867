"""Saddles: the Hessian, the critical-point finder, index against loss, escaping saddles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiments.classic import saddles

EXPERIMENT = registry.get("saddles")


@pytest.fixture
def task(cpu_context):
    return saddles.problem(EXPERIMENT.config("quick"), cpu_context)


def test_the_hessian_is_the_derivative_of_the_batched_gradient(task, cpu_context):
    theta = saddles.random_parameters(3, EXPERIMENT.config("quick"),
                                      cpu_context.generator("t"))
    step = 1e-6
    direction = torch.zeros_like(theta)
    direction[:, 5] = step
    finite = (task["gradient"](theta + direction) - task["gradient"](theta - direction)) / (
        2 * step)
    hessians = task["hessian"](theta)
    torch.testing.assert_close(hessians[:, :, 5], finite, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(hessians, hessians.transpose(1, 2))


def test_newton_finds_a_saddle_that_gd_would_leave(task, cpu_context):
    theta = saddles.random_parameters(16, EXPERIMENT.config("quick"),
                                      cpu_context.generator("t")) * 0.1
    found = saddles.spectrum(task, saddles.newton_to_critical(task, theta, 60))
    converged = found["gradient_norm"] < 1e-8
    assert converged.float().mean() > 0.5
    assert (found["index"][converged] > 0).all()  # near the origin: saddles, not minima


def test_the_ball_draw_stays_inside_its_radius():
    draws = saddles.ball((2_000, 5), 0.5, torch.Generator().manual_seed(0))
    radii = draws.norm(dim=1)
    assert radii.max() <= 0.5 and radii.median() > 0.4  # uniform in volume: mass near the rim


def test_perturbation_helps_leave_an_exact_saddle(task, cpu_context):
    config = EXPERIMENT.config("quick", {"escape_steps": 1_500})
    theta = saddles.random_parameters(8, config, cpu_context.generator("t")) * 0.1
    points = saddles.newton_to_critical(task, theta, 60)
    stopped = saddles.spectrum(task, points)["gradient_norm"] < 1e-8
    result = saddles.escape(config, task, points[stopped], cpu_context)
    plain = saddles.censored_steps(config, result["plain"]["steps_to_escape"])
    perturbed = saddles.censored_steps(config, result["perturbed"]["steps_to_escape"])
    assert np.median(perturbed) < np.median(plain)


def test_quick_run_relates_index_to_loss(quick_store):
    (run,) = quick_store.runs(experiment="saddles")
    verdicts = [c["verdict"] for c in run["claims"]]
    assert verdicts[:2] == ["holds", "holds"]


@pytest.mark.parametrize("changes, message", [
    ({"hidden": 0}, "greater than 0"),
    ({"starts": -5}, "greater than 0"),
    ({"perturbation": 0}, "greater than 0"),
    ({"inputs": "four"}, "valid integer"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
