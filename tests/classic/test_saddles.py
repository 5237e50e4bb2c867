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


def test_the_written_out_gradient_is_autograds(task, cpu_context):
    theta = saddles.random_parameters(5, EXPERIMENT.config("quick"),
                                      cpu_context.generator("t")).requires_grad_(True)
    (autograd,) = torch.autograd.grad(task["losses"](theta).sum(), theta)
    torch.testing.assert_close(task["gradient"](theta.detach()), autograd, atol=1e-14, rtol=1e-12)


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


def test_index_against_loss_is_judged_by_trajectory():
    config = EXPERIMENT.config("quick")
    loss = np.linspace(0.01, 1, 40)
    trajectory = np.arange(40) // 2  # two critical points from each of 20 trajectories
    rising = {"loss": loss, "index": loss / 5, "trajectory": trajectory}
    result = {"critical": rising, "newton_starts": 80}
    assert saddles.check_index_rises_with_loss(config, result).verdict == "holds"
    result["critical"] = {**rising, "index": (1 - loss) / 5}
    assert saddles.check_index_rises_with_loss(config, result).verdict == "fails"


def escape_result(plain_escapes: int, perturbed_escapes: int, flat: int = 0) -> dict:
    """20 strict saddles from 20 trajectories (and `flat` non-strict ones, escaped by neither),
    the first k of them escaped by each rule at step 100."""
    count = 20 + flat
    curvature = np.where(np.arange(count) < 20, -1.0, -1e-6)
    eigenvalues = np.stack([curvature, np.ones(count)], 1)

    def steps(k):
        return np.where(np.arange(count) < k, 100.0, np.nan)
    return {"critical": {"index": np.full(count, 0.5), "eigenvalues": eigenvalues,
                         "trajectory": np.arange(count)},
            "escape": {"plain": {"steps_to_escape": steps(plain_escapes)},
                       "perturbed": {"steps_to_escape": steps(perturbed_escapes)}}}


@pytest.mark.parametrize("plain, perturbed, verdict", [(2, 20, "holds"), (20, 2, "fails"),
                                                       (10, 11, "inconclusive")])
def test_perturbed_gd_is_judged_on_the_escape_fractions_of_strict_saddles(plain, perturbed,
                                                                         verdict):
    config = EXPERIMENT.config("quick")
    check = saddles.check_perturbed_escapes(config, escape_result(plain, perturbed, flat=30))
    assert check.verdict == verdict
    assert check.detail.startswith("20 of 50 saddles strict")  # the flat ones are left out


def test_gd_end_points_are_judged_on_the_converged_runs_by_minima_and_strict_saddles():
    config = EXPERIMENT.config("quick")

    def end(converged, index, lowest=-1.0):
        return {"gd_end": {"converged": converged, "index": index, "loss": np.zeros(60),
                           "lowest_eigenvalue": np.where(index > 0, lowest, 0.1)}}
    first = np.arange(60) < 40
    at_minima = end(first, np.where(first, 0.0, 0.2))
    assert saddles.check_gd_finds_minima(config, at_minima).verdict == "holds"
    at_saddles = end(first, np.where(np.arange(60) < 20, 0.0, 0.2))
    assert saddles.check_gd_finds_minima(config, at_saddles).verdict == "fails"
    passing = end(first, np.where(np.arange(60) < 20, 0.0, 0.2), lowest=-1e-9)
    assert saddles.check_gd_finds_minima(config, passing).verdict == "inconclusive"  # 20 of 20
    none = end(np.zeros(60, dtype=bool), np.zeros(60))
    assert saddles.check_gd_finds_minima(config, none).verdict == "not checked"


def test_a_run_whose_loss_still_falls_has_not_converged():
    config = EXPERIMENT.config("quick", {"gd_steps": 1_000})
    steps = list(range(0, 1_001, 100))
    falling = torch.linspace(1.0, 0.5, len(steps), dtype=torch.float64)
    resting = torch.full((len(steps),), 0.5, dtype=torch.float64)
    run = {"step": steps, "loss": torch.stack([falling, resting, resting])}
    end = {"loss": torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64),
           "gradient_norm": torch.tensor([1e-6, 1e-6, 1e-2], dtype=torch.float64)}
    assert saddles.converged(config, run, end).tolist() == [False, True, False]


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
