"""§4: curves and their encodings, condition numbers against an independent computation, the
ordering of the attempts, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.data.curves import SLOPE_PATTERNS, curves_of, kink_vectors, ramp_matrix
from gradfail.errors import ConfigError
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
    assert measured["full"] == pytest.approx(independent, rel=0.3)  # estimated from 20k curves
    assert 1 <= measured["whitened"] < 1.1
    assert 1e5 < measured["convolution"] < 1e6  # spec: ≈1.6e6 at n = 100, ~n³


def test_attempts_are_ordered_as_the_paper_says(cpu_context):
    config = EXPERIMENT.config("quick", {"full_steps": 2_000, "conv_steps": 2_000,
                                         "autoencoder_steps": 300, "eval_every": 100,
                                         "checkpoints": [100, 2_000]})
    final = {}
    for attempt in ("whitened convolution", "convolution", "full linear"):
        run = conditioning.train_attempt(config, attempt, cpu_context)
        final[attempt] = float(np.median(np.asarray(run["rmse"])[:, -1]))
    assert final["whitened convolution"] < 0.01
    assert final["whitened convolution"] < final["convolution"] / 3
    assert final["full linear"] > 0.01


@pytest.mark.parametrize("changes, message", [
    ({"n": 7}, "n ≥ 2k"),
    ({"k": 0}, "greater than 0"),
    ({"conv_lr": -0.1}, "greater than 0"),
    ({"whitened_lr": 0}, "greater than 0"),
    ({"distribution": "paper", "k": 5, "n": 11}, "n ≥ 2k"),
    ({"k": 4}, "k = 3 only"),
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
