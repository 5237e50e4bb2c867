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


def training(d: int, *final_accuracies: float, evaluations: int = 11) -> dict:
    """A constructed result: per seed, chance until the last 10 evaluations, then `final`."""
    rows = [[0.5] * (evaluations - 10) + [final] * 10 for final in final_accuracies]
    return {"training": [{"d": d, "steps": list(range(0, 5_000 * evaluations, 5_000)),
                          "accuracy": rows}], "exact": [], "floor": []}


@pytest.mark.parametrize("finals, verdict", [
    ((1.0, 0.99, 1.0), "holds"),  # every seed learned: the median's interval is above 0.95
    ((0.5, 0.52, 0.5), "fails"),  # none did, in the paper's 50,000 steps
    ((1.0, 0.5, 1.0), "inconclusive"),  # 3 seeds: the interval is [min, max], astride 0.95
])
def test_learned_is_judged_on_the_interval_of_the_median_seed(finals, verdict):
    config = small_config(dims=[5], steps=[50_000])
    found = parity.learned_within_budget(5, 1).evaluate(config, training(5, *finals))
    assert found["verdict"] == verdict
    assert found["interval"]["n"] == 3 and found["interval"]["method"] == "order-statistic"


@pytest.mark.parametrize("finals, verdict", [
    ((0.5, 0.52, 0.49), "holds"),
    ((0.9, 0.8, 0.85), "fails"),
    ((0.5, 0.7, 0.5), "inconclusive"),  # 3 seeds: [min, max] of the deviations, astride 0.05
])
def test_chance_is_judged_on_the_interval_of_the_median_seed(finals, verdict):
    config = small_config(dims=[30], steps=[50_000])
    assert parity.stays_at_chance(30).evaluate(config, training(30, *finals))["verdict"] == verdict


def test_a_short_run_is_judged_only_where_more_steps_could_not_change_the_verdict():
    config = small_config(dims=[30], steps=[2_000])
    chance = parity.stays_at_chance(30).evaluate(config, training(30, 0.5, 0.5))
    assert chance["verdict"] == "not checked" and chance["holds"] is None
    assert "2,000 of the 50,000 steps" in chance["detail"] and chance["interval"] is not None
    assert parity.stays_at_chance(30).evaluate(config, training(30, 0.9, 0.9))["verdict"] == \
        "fails"  # left chance early: more steps cannot bring it back
    assert parity.learned_within_budget(30, 1).evaluate(
        config, training(30, 0.5, 0.5))["verdict"] == "not checked"
    assert parity.learned_within_budget(30, 1).evaluate(
        config, training(30, 1.0, 1.0))["verdict"] == "holds"
    absent = parity.learned_within_budget(10, 1).evaluate(config, training(30, 1.0))
    assert absent["verdict"] == "not checked" and "not run" in absent["detail"]


@pytest.mark.parametrize("slopes, verdict", [
    ((-1.0, -1.0, -1.0), "holds"),
    ((-0.99, -1.01, -1.0), "holds"),
    ((-0.5, -0.6, -0.55), "fails"),
    ((-1.5, -1.4, -1.45), "fails"),
    ((-1.0, -0.8, -0.9), "inconclusive"),
])
def test_the_slope_is_judged_on_its_t_interval_over_seeds(slopes, verdict):
    dims = np.arange(4, 11)
    exact = [{"d": int(d), "ratio": [2.0 ** (s * d) for s in slopes]} for d in dims]
    claim = next(c for c in parity.CLAIMS if c.id == "variance-follows-2-d")
    found = claim.evaluate(small_config(), {"training": [], "exact": exact})
    assert found["verdict"] == verdict and found["interval"]["method"] == "t"
    assert found["measured"] == pytest.approx(np.mean(slopes))


def test_steps_to_accuracy_and_the_moving_average_match_a_loop():
    run = {"steps": list(range(0, 2_100, 100)),
           "accuracy": [[0.4] * 5 + [1.0] * 16, [0.5] * 21]}
    smooth = parity.moving_accuracy(run)
    for seed, row in enumerate(run["accuracy"]):
        loop = [np.mean(row[i - 9:i + 1]) for i in range(9, 21)]
        np.testing.assert_allclose(smooth[seed], loop)
    first = next(i for i in range(9, 21) if np.mean(run["accuracy"][0][i - 9:i + 1]) >= 0.95)
    assert parity.steps_to_accuracy(run, 0.95).tolist() == [run["steps"][first], np.inf]
