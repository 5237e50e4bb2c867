"""designed_filters: the Gabor bank is what it says; a claim on both data sets is judged on the
paired interval of each; bad sizes are one-line errors."""

from __future__ import annotations

import math

import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiments.notes import designed_filters as df

EXPERIMENT = registry.get("designed_filters")


def test_the_gabor_bank_is_zero_mean_he_sized_even_and_odd():
    bank = df.gabor_bank(5, 4, 4.0)
    assert bank.shape == (8, 25)
    torch.testing.assert_close(bank.mean(1), torch.zeros(8), atol=1e-6, rtol=0)
    torch.testing.assert_close(bank.norm(dim=1), torch.full((8,), math.sqrt(2)))
    square = bank.view(4, 2, 5, 5)  # (orientation, phase, row, column)
    rotated = square.flip(-1, -2)
    torch.testing.assert_close(rotated[:, 0], square[:, 0])  # cosine phase: even
    torch.testing.assert_close(rotated[:, 1], -square[:, 1])  # sine phase: odd


def test_the_zero_orientation_sees_a_vertical_edge_the_right_angle_one_does_not():
    edge = torch.zeros(5, 5)
    edge[:, 3:] = 1  # intensity changes along the columns
    responses = (df.gabor_bank(5, 4, 4.0).view(4, 2, 25) @ edge.flatten()).abs()
    assert responses[0].max() > 5 * responses[2].max()  # θ = 0 vs θ = π/2


def constructed(gabor: dict[str, list[float]], learned: float = 0.8) -> dict:
    """Runs at one size per data set: fixed Gabor's final accuracy per seed as given, every
    other variant at `learned` on every seed."""
    runs = [{"variant": v, "dataset": d, "n": 100, "steps": [10],
             "accuracy": [[a] for a in (gabor[d] if v == "fixed Gabor" else [learned] * 3)]}
            for d in df.DATASETS for v in df.VARIANTS]
    return {"runs": runs}


@pytest.mark.parametrize("lines, verdict", [
    ([0.85, 0.86, 0.85], "holds"),
    ([0.70, 0.71, 0.70], "fails"),
    ([0.70, 0.95, 0.80], "inconclusive"),
])
def test_a_claim_on_both_data_sets_is_judged_on_each_paired_interval(lines, verdict):
    result = constructed({"digits": [0.85, 0.86, 0.85], "lines": lines})
    found = df.check_random(EXPERIMENT.config("quick"), result)
    assert found.verdict == verdict
    assert "digits (n=100)" in found.detail and "lines (n=100)" in found.detail


def test_one_failing_data_set_fails_the_claim_whatever_the_other():
    result = constructed({"digits": [0.70, 0.95, 0.80], "lines": [0.60, 0.61, 0.60]})
    found = df.check_random(EXPERIMENT.config("quick"), result)
    assert found.verdict == "fails" and found.measured == pytest.approx(-0.197, abs=1e-3)


def test_matching_allows_the_stated_margin():
    result = constructed({"digits": [0.79, 0.79, 0.79], "lines": [0.795, 0.79, 0.79]})
    assert df.check_match(EXPERIMENT.config("quick"), result).verdict == "holds"
    assert df.check_random(EXPERIMENT.config("quick"), result).verdict == "fails"


@pytest.mark.parametrize("changes, message", [
    ({"kernel": 9}, "less than or equal to 7"),
    ({"digit_samples": [50, 2_000]}, "the split holds 1437"),
    ({"steps": 5, "evaluations": 10}, "more accuracy checkpoints than steps"),
    ({"orientations": 0}, "greater than 0"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
