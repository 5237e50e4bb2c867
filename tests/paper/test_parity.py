"""The parity experiment: its measurements against brute force, its symptoms at small scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.data.parity import parity_labels, random_signs, random_subsets
from gradfail.experiment import RunContext
from gradfail.experiments.paper import parity
from gradfail.maths.walsh_hadamard import sign_cube
from gradfail.nets.batched import BatchedMLP, hinge_loss

EXPERIMENT = registry.get("parity")


def small_config(**changes):
    return EXPERIMENT.config("quick", changes)


def brute_force_variance(model: BatchedMLP, d: int) -> np.ndarray:
    """Var over all 2^d targets of the population hinge gradient, / E‖∂p/∂w‖²; loops, autograd."""
    x = sign_cube(d)
    seeds = model.layers[0].weight.shape[0]
    params = list(model.parameters())

    def flat_gradient(output: torch.Tensor) -> torch.Tensor:
        grads = torch.autograd.grad(output, params)
        return torch.cat([g.reshape(seeds, -1) for g in grads], dim=1).double()

    gradients = []
    for s in range(2**d):
        subset = torch.tensor([[bool(s >> k & 1) for k in range(d)]] * seeds)
        y = parity_labels(x.expand(seeds, -1, -1), subset)
        loss = hinge_loss(model(x.expand(seeds, -1, -1)).squeeze(-1), y).mean(1).sum()
        gradients.append(flat_gradient(loss))
    gradients = torch.stack(gradients, 1)  # (seeds, targets, params)
    variance = (gradients - gradients.mean(1, keepdim=True)).square().sum(-1).mean(1)
    g_squared = torch.zeros(seeds, dtype=torch.float64)
    for point in x:  # per-sample gradients by a Python loop
        score = model(point.expand(seeds, 1, -1)).sum()
        g_squared += flat_gradient(score).square().sum(-1) / 2**d
    return (variance / g_squared).numpy()


@pytest.mark.parametrize("d", [3, 5])
def test_exact_variance_equals_brute_force(d):
    config = small_config()
    ctx = RunContext(torch.device("cpu"), seed=3, n_seeds=2)
    measured = parity.exact_target_variance(config, d, ctx)
    model = BatchedMLP(2, [d, config.width_factor * d, 1], ctx.generator("variance", d),
                       torch.device("cpu"))
    np.testing.assert_allclose(measured["ratio"], brute_force_variance(model, d), rtol=1e-6)
    assert all(r <= 2.0**-d for r in measured["ratio"])  # Theorem 1's bound


def test_variance_over_all_parities_follows_two_to_minus_d(cpu_context):
    config = small_config()
    ratios = [np.median(parity.exact_target_variance(config, d, cpu_context)["ratio"])
              for d in (4, 6, 8, 10)]
    slope = np.polyfit([4, 6, 8, 10], np.log2(ratios), 1)[0]
    assert -1.05 <= slope <= -0.95


def test_sampled_targets_underestimate_with_a_spread(cpu_context):
    measured = parity.exact_target_variance(small_config(sampled_repeats=40), 10, cpu_context)
    sampled = np.ravel(measured["sampled_ratio"])
    assert np.median(sampled) < np.median(measured["ratio"])
    assert sampled.max() / sampled.min() > 1.5


def test_monte_carlo_estimate_sits_at_its_floor_far_above_the_variance(cpu_context):
    config = small_config(floor_inputs=2**10)
    measured = parity.monte_carlo_floor(config, 20, cpu_context)
    for estimate, floor in zip(measured["ratio"], measured["floor_ratio"], strict=True):
        assert 0.7 * floor <= estimate <= 1.3 * floor
        assert estimate > 100 * 2.0**-20


def test_periodic_variance_falls_with_radius_to_the_floor(cpu_context):
    config = small_config(periodic_dim=5, periodic_inputs=2**12, periodic_radii=[0.3, 1.5])
    measured = parity.periodic_variance(config, cpu_context)
    near, far = np.median(measured["ratio"], axis=1)
    assert far < near / 5
    assert far < 2 * measured["floor_ratio"][1]


def test_parity_learned_at_small_d_and_at_chance_at_large_d(cpu_context):
    config = small_config(steps=[3_000])
    small = parity.train(config, 5, cpu_context)
    large = parity.train(config, 30, cpu_context)
    assert np.all(np.asarray(small["accuracy"])[:, -5:].mean(1) >= 0.95)
    assert np.all(np.abs(parity.moving_accuracy(large) - 0.5) <= 0.05)


def test_same_seed_same_numbers_and_seeds_differ():
    config = small_config(steps=[300])
    first = parity.train(config, 6, RunContext(torch.device("cpu"), seed=7, n_seeds=2))
    again = parity.train(config, 6, RunContext(torch.device("cpu"), seed=7, n_seeds=2))
    other = parity.train(config, 6, RunContext(torch.device("cpu"), seed=8, n_seeds=2))
    assert np.array_equal(first["accuracy"], again["accuracy"])
    assert not np.array_equal(first["accuracy"], other["accuracy"])


def test_data_are_fair_bits_and_subsets_are_uniform_or_fixed():
    generator = torch.Generator().manual_seed(0)
    bits = random_signs((64, 1000), generator)
    assert set(bits.unique().tolist()) == {-1.0, 1.0}
    assert abs(bits.mean().item()) < 0.01
    uniform = random_subsets(2000, 10, generator)
    assert abs(uniform.float().mean().item() - 0.5) < 0.02
    assert (random_subsets(50, 10, generator, size=4).sum(1) == 4).all()


def test_claims_say_not_checked_when_the_budget_is_too_small():
    config = small_config(steps=[2_000])
    result = {"training": [{"d": 30, "steps": list(range(0, 2_001, 100)),
                            "accuracy": [[0.5] * 21]}], "exact": [], "floor": []}
    chance = parity.stays_at_chance(30).evaluate(config, result)
    assert chance["verdict"] == "not checked" and chance["holds"] is None
    result["training"][0]["accuracy"] = [[0.5] * 10 + [0.9] * 11]
    assert parity.stays_at_chance(30).evaluate(config, result)["verdict"] == "fails"
    learned = parity.learned_within_budget(30, 1).evaluate(config, result)
    assert learned["verdict"] == "not checked"
