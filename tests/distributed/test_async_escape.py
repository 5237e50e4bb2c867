"""async_escape: noise matched step by step to the staleness perturbation, and each claim's rule
on results whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiment import RunContext
from gradfail.experiments.distributed import async_escape

EXPERIMENT = registry.get("async_escape")


def test_matched_noise_has_the_perturbations_norm_seed_by_seed():
    generator = torch.Generator().manual_seed(0)
    stale, fresh = torch.randn(5, 9, generator=generator), torch.randn(5, 9, generator=generator)
    noise = async_escape.matched_noise(stale, fresh, generator)
    torch.testing.assert_close(noise.norm(dim=1), (stale - fresh).norm(dim=1))
    assert not torch.allclose(noise, stale - fresh)  # a random direction, not the difference


def test_the_noise_is_matched_at_every_step_of_the_stale_run(monkeypatch):
    """Each step's noise norm is that step's ‖g(w_{t−τ}) − g(w_t)‖, and the stale row reports
    their mean × lr."""
    config = EXPERIMENT.config("quick", {"units": 3, "examples": 64, "steps": 25})
    ctx = RunContext(torch.device("cpu"), seed=0, n_seeds=3)
    steps, matched = [], async_escape.matched_noise

    def recording(stale, fresh, generator):
        noise = matched(stale, fresh, generator)
        steps.append(((stale - fresh).norm(dim=1), noise.norm(dim=1)))
        return noise

    monkeypatch.setattr(async_escape, "matched_noise", recording)
    stale, noisy = async_escape.train(config, 2, ctx)
    assert len(steps) == config.steps and noisy["matches_tau"] == 2 and noisy["noise"]
    for perturbation, noise in steps:
        torch.testing.assert_close(noise, perturbation)
    mean = config.lr * torch.stack([p for p, _ in steps]).mean(0)
    np.testing.assert_allclose(stale["perturbation"], mean.numpy(), rtol=1e-5)
    synchronous = async_escape.train(config, 0, ctx)
    assert len(synchronous) == 1 and synchronous[0]["tau"] == 0


def row(tau: int, losses, **extra) -> dict:
    return {"tau": tau, "loss": losses, "perturbation": [0.01] * len(losses), **extra}


def result(by_tau: dict[int, list[float]], matched: dict[int, list[float]]) -> dict:
    return {"stale": [row(t, losses) for t, losses in by_tau.items()],
            "matched": [row(0, losses, matches_tau=t) for t, losses in matched.items()]}


REACH, MISS, DIVERGED = 0.0, 0.5, float("inf")


@pytest.mark.parametrize("largest, verdict", [
    ([DIVERGED] * 128, "holds"),
    ([MISS] * 128, "fails"),
    ([DIVERGED] * 32, "inconclusive"),  # too few seeds to tell ≥ 90 points
])
def test_the_stable_step_is_judged_on_the_difference_of_divergence(largest, verdict):
    config = EXPERIMENT.config("quick", {"taus": [0, 8]})
    found = async_escape.check_delay_limits_the_step(
        config, result({0: [MISS] * len(largest), 8: largest}, {}))
    assert found.verdict == verdict


@pytest.mark.parametrize("stale, verdict", [
    ([REACH] * 90 + [MISS] * 38, "holds"),
    ([REACH] * 5 + [MISS] * 123, "fails"),
    ([REACH] * 35 + [MISS] * 93, "inconclusive"),
])
def test_staleness_helps_at_some_tau_judged_against_synchronous(stale, verdict):
    config = EXPERIMENT.config("quick", {"taus": [0, 2, 8]})
    synchronous = [REACH] * 32 + [MISS] * 96
    found = async_escape.check_staleness_helps(
        config, result({0: synchronous, 2: stale, 8: [DIVERGED] * 128}, {}))
    assert found.verdict == verdict


@pytest.mark.parametrize("noise, verdict", [
    ([REACH] * 32 + [MISS] * 96, "holds"),  # staleness beats the matched noise
    ([REACH] * 90 + [MISS] * 38, "inconclusive"),  # noise as good: not specific to staleness
    ([REACH] * 127 + [MISS], "fails"),  # noise better
])
def test_beyond_matched_noise_needs_both_comparisons(noise, verdict):
    config = EXPERIMENT.config("quick", {"taus": [0, 2]})
    stale = [REACH] * 90 + [MISS] * 38
    found = async_escape.check_matched_noise(
        config, result({0: [REACH] * 32 + [MISS] * 96, 2: stale}, {2: noise}))
    assert found.verdict == verdict


@pytest.mark.parametrize("changes, message", [
    ({"units": 1}, "greater than or equal to 2"),
    ({"taus": [-1, 2]}, "greater than or equal to 0"),
    ({"success": 0}, "greater than 0"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
