"""designed_filters: the Gabor bank is what it says; at quick scale oriented filters beat random
ones on lines and a Gabor start is ahead early; bad sizes are one-line errors."""

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


def test_oriented_filters_beat_random_ones_and_a_gabor_start_is_ahead(quick_store):
    (run,) = quick_store.runs(experiment="designed_filters")
    result = run["result"]
    assert df.final(result, "fixed Gabor", "lines") > df.final(result, "fixed random",
                                                               "lines") + 0.1
    assert df.first_checkpoint(result, "Gabor init, learned", "lines") > df.first_checkpoint(
        result, "learned", "lines") + 0.05


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
