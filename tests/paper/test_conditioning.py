"""§4: curves and their encodings, condition numbers against an independent computation, the
ordering of the attempts, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.data.curves import SLOPE_PATTERNS, curves_of, kink_vectors, ramp_matrix
from gradfail.errors import ConfigError
from gradfail.experiment import SCALES
from gradfail.experiments.paper import conditioning

EXPERIMENT = registry.get("conditioning")


def test_the_inverse_of_the_ramp_is_the_second_difference():
    """Lemma 1: W⁻¹ has 1, −2, 1 on its diagonal and first two sub-diagonals."""
    inverse = torch.linalg.inv(ramp_matrix(12))
    expected = torch.eye(12) - 2 * torch.eye(12).roll(1, 0).tril(-1) + torch.eye(12).roll(
        2, 0).tril(-2)
    torch.testing.assert_close(inverse, expected.double(), atol=1e-9, rtol=0)


def test_code_curves_follow_the_slope_patterns():
    p = kink_vectors(300, 100, 3, "code", torch.Generator().manual_seed(0))
    kinks = p.nonzero()[:, 1].view(300, 3)
    assert kinks.min() >= 3 and kinks.max() <= 96
    slopes = p[p != 0].view(300, 3).cumsum(1)
    assert {tuple(row) for row in slopes.tolist()} == set(SLOPE_PATTERNS)
    curve = curves_of(p[:1])[0]
    assert curve[: kinks[0, 0]].abs().max() == 0  # flat before the first kink


def test_ideal_filters_recover_the_kinks_with_and_without_whitening():
    p = kink_vectors(50, 40, 3, "paper", torch.Generator().manual_seed(1))
    f = curves_of(p)
    second = torch.tensor([[1.0, -2.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(conditioning.convolve(f[None], second)[0, :, 2:], p[:, 2:])
    transform = conditioning.whitening(f[None])
    taps = torch.linalg.solve(transform[0], second[0])[None]  # C^{1/2}(1, −2, 1)
    torch.testing.assert_close(conditioning.convolve(f[None], taps, transform)[0, :, 2:], p[:, 2:])


def test_condition_numbers_match_an_independent_computation(cpu_context):
    config = EXPERIMENT.config("quick", {"condition_curves": 20_000})
    measured = conditioning.condition_numbers(config, 50, cpu_context)
    # independent: numpy SVD of the ramp; E[f fᵀ] = (k/(3n))·W Wᵀ under the paper's distribution
    index = np.arange(50)
    ramp = np.maximum(index[:, None] - index[None, :] + 1, 0).astype(float)
    singular = np.linalg.svd(ramp, compute_uv=False)
    independent = (singular[0] / singular[-1]) ** 2
    assert measured["ramp"] == pytest.approx(independent, rel=1e-6)
    assert len(measured["full"]) == cpu_context.n_seeds
    assert measured["full"] == pytest.approx([independent] * 2, rel=0.3)  # from 20k curves each
    assert measured["full"][0] != measured["full"][1]  # each seed its own curves
    assert all(1 <= c < 1.1 for c in measured["whitened"])
    assert all(1e5 < c < 1e6 for c in measured["convolution"])  # spec: ≈1.6e6 at n = 100, ~n³


def test_the_step_count_follows_the_condition_number(cpu_context):
    """Gradient descent at step 1/λ_max needs about cond·log(1/ε) steps (Appendix A.5): on the
    whitened windows (cond ≈ 1) a few, on the raw ones (cond ~1e4 at n = 25) more than 500."""
    config = EXPERIMENT.config("quick", {"extension_steps": 500, "train_curves": 1_000})
    steps = conditioning.steps_to_one_percent(config, 25, cpu_context)
    assert steps["whitened SGD"] <= 100
    assert steps["SGD"] == float("inf")


@pytest.mark.parametrize("changes, message", [
    ({"n": 7}, "n ≥ 2k"),
    ({"k": 0}, "greater than 0"),
    ({"conv_lr": -0.1}, "greater than 0"),
    ({"whitened_lr": 0}, "greater than 0"),
    ({"distribution": "paper", "k": 5, "n": 11}, "n ≥ 2k"),
    ({"k": 4}, "k = 3 only"),
    ({"epsilon_placement": "keras"}, "unknown ε placement"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)


def test_the_max_error_is_measured_at_the_kinks_only_when_they_are_given():
    f = torch.tensor([[[0.0, 0.0, 1.0, 2.0, 3.0]]])
    reconstructed = f + torch.tensor([[[0.0, 0.3, 0.0, 0.06, 0.0]]])
    kinks = torch.tensor([[[False, False, False, True, False]]])
    rmse, at_kinks = conditioning.relative_errors(reconstructed, f, kinks)
    _, anywhere = conditioning.relative_errors(reconstructed, f)
    assert at_kinks.item() == pytest.approx(0.02) and anywhere.item() == pytest.approx(0.1)
    assert rmse.item() == pytest.approx(((0.09 + 0.0036) / 5) ** 0.5 / 3)


def test_every_scale_runs_the_papers_tensorflow_adam():
    """ε on the uncorrected √v, with TF's default β2 0.999 and ε 1e-8 (PWL_fail1.py, spec §0)."""
    assert {EXPERIMENT.config(scale).epsilon_placement for scale in SCALES} == {"tf"}
    assert conditioning.TF_ADAM == {"betas": (0.9, 0.999), "eps": 1e-8}


CLAIMS = {claim.id: claim for claim in conditioning.CLAIMS}


def attempts(**errors: list[list[float]]) -> dict:
    """A constructed result: per attempt, (seeds, evaluations) errors at steps 0, 500, …"""
    runs = []
    for name, rmse in errors.items():
        steps = list(range(0, 500 * len(rmse[0]), 500))
        runs.append({"attempt": name.replace("_", " "), "steps": steps, "rmse": rmse,
                     "max": rmse})
    return {"attempts": runs}


@pytest.mark.parametrize("at_500, verdict", [
    ((0.001, 0.0005, 0.002), "holds"),
    ((0.05, 0.2, 0.03), "fails"),
    ((0.001, 0.05, 0.002), "inconclusive"),  # 3 seeds: [min, max] astride 1%
])
def test_whitened_fast_is_judged_at_step_500(at_500, verdict):
    result = attempts(whitened_convolution=[[1.0, e] for e in at_500])
    found = CLAIMS["whitened-convolution-fast"].evaluate(EXPERIMENT.config("quick"), result)
    assert found["verdict"] == verdict and found["interval"]["method"] == "order-statistic"


@pytest.mark.parametrize("at_5000, length, verdict", [
    ((0.03, 0.05, 0.02), 11, "holds"),  # still above 1% at ten times the whitened budget
    ((0.001, 0.002, 0.003), 11, "fails"),
    ((0.001, 0.05, 0.02), 11, "inconclusive"),
    ((0.03, 0.05, 0.02), 3, "not checked"),  # 1,000 steps: it may yet get below 1% by 5,000
    ((0.001, 0.002, 0.003), 3, "fails"),  # below 1% already at 1,000 steps
])
def test_convolution_slow_is_judged_at_ten_times_the_whitened_budget(at_5000, length, verdict):
    result = attempts(convolution=[[1.0] * (length - 1) + [e] for e in at_5000])
    found = CLAIMS["convolution-slow"].evaluate(EXPERIMENT.config("quick"), result)
    assert found["verdict"] == verdict and found["interval"]["n"] == 3


def test_full_linear_stuck_needs_the_papers_50000_steps():
    claim, config = CLAIMS["full-linear-stuck"], EXPERIMENT.config("quick")
    found = claim.evaluate(config, attempts(full_linear=[[1.0, 0.05], [1.0, 0.08]]))
    assert found["verdict"] == "not checked" and "50,000 steps" in found["detail"]
    assert found["measured"] == pytest.approx(0.065) and found["interval"] is not None
    learned = attempts(full_linear=[[1.0, 0.001], [1.0, 0.002]])
    assert claim.evaluate(config, learned)["verdict"] == "fails"  # below 1% early: for good
    long_run = attempts(full_linear=[[1.0] * 100 + [e] for e in (0.05, 0.08)])
    assert claim.evaluate(config, long_run)["verdict"] == "holds"


def conditions(exponents: dict[str, list[float]]) -> dict:
    """A constructed result: per seed, cond = n^exponent exactly."""
    return {"conditions": [{"n": n, "ramp": n**4.0, **{key: [n**e for e in values]
                                                        for key, values in exponents.items()}}
                           for n in (25, 50, 100)]}


@pytest.mark.parametrize("full, convolution, verdicts", [
    ([3.9, 3.95, 4.0], [3.0, 2.95, 3.05], ("holds", "holds")),
    ([3.0, 3.1, 2.9], [2.0, 2.1, 1.9], ("fails", "fails")),
    ([3.9, 3.95, 4.0], [3.9, 4.0, 4.1], ("holds", "fails")),  # above 3 + 15%
    ([3.2, 3.9, 4.6], [2.2, 3.0, 3.8], ("inconclusive", "inconclusive")),
])
def test_fitted_exponents_are_judged_on_their_t_interval_over_seeds(full, convolution, verdicts):
    result = conditions({"full": full, "convolution": convolution, "whitened": [0.0] * 3})
    config = EXPERIMENT.config("quick")
    found = (conditioning.check_full_growth(config, result),
             conditioning.check_conv_growth(config, result))
    assert tuple(check.verdict for check in found) == verdicts
    assert found[0].measured == pytest.approx(np.mean(full))
    assert found[0].interval.method == "t" and found[0].interval.n == 3


@pytest.mark.parametrize("worst, verdict", [
    ([1.05, 1.04, 1.06], "holds"), ([3.0, 3.2, 2.9], "fails"), ([1.0, 3.0, 1.5], "inconclusive")])
def test_whitened_condition_is_judged_on_its_largest_value_over_n(worst, verdict):
    result = {"conditions": [{"n": 25, "whitened": [1.0] * 3}, {"n": 50, "whitened": worst}]}
    found = conditioning.check_whitened_flat(EXPERIMENT.config("quick"), result)
    assert found.verdict == verdict and found.measured == pytest.approx(np.mean(worst))
