"""skip_flat: the skipping convolution is exact on flat patches; what it skips grows with the
threshold; bad thresholds and sizes are one-line errors."""

from __future__ import annotations

import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiments.notes import skip_flat as sf

EXPERIMENT = registry.get("skip_flat")


def images_with_flat_regions() -> torch.Tensor:
    x = torch.rand(4, 12, 12, generator=torch.Generator().manual_seed(0))
    x[:, :6] = 0.5  # the top half is one flat neighbourhood
    return x


def test_at_threshold_zero_skipping_equals_the_dense_convolution():
    x, filters, bias = images_with_flat_regions(), torch.randn(5, 9), torch.randn(5)
    out, skipped = sf.skip_convolution(x, filters, bias, 3, 0.0)
    torch.testing.assert_close(out, sf.dense_convolution(x, filters, bias, 3), atol=1e-5,
                               rtol=1e-5)
    torch.testing.assert_close(sf.im2col_convolution(x, filters, bias, 3),
                               sf.dense_convolution(x, filters, bias, 3), atol=1e-5, rtol=1e-5)
    assert skipped == pytest.approx(4 * 10 / (10 * 10), abs=0.05)  # rows 0..3 of 10 are flat


def test_above_every_variance_everything_is_the_flat_answer():
    x, filters, bias = images_with_flat_regions(), torch.randn(5, 9), torch.randn(5)
    out, skipped = sf.skip_convolution(x, filters, bias, 3, 1.0)
    mean = torch.nn.functional.avg_pool2d(x[:, None], 3, stride=1)
    assert skipped == 1.0
    torch.testing.assert_close(out, mean * filters.sum(1)[:, None, None] + bias[:, None, None])


def test_skipping_grows_with_the_threshold_and_noise_hides_no_flat_patch(quick_store):
    (run,) = quick_store.runs(experiment="skip_flat")
    sweeps = {s["dataset"]: s for s in run["result"]["sweeps"]}
    for found in sweeps.values():
        skipped = [r["skipped"] for r in found["rows"]]
        assert skipped == sorted(skipped) and skipped[-1] > skipped[0]
    lines = [r["skipped"] for r in sweeps["lines"]["rows"]]
    assert lines[0] == 0 and lines[-1] > 0.5  # noise σ = 0.1: background variance ≈ 0.01
    exact = next(c for c in run["claims"] if c["name"].startswith("the flat answer is exact"))
    assert exact["verdict"] == "holds"


@pytest.mark.parametrize("changes, message", [
    ({"thresholds": [-0.1, 0.1]}, "greater than or equal to 0"),
    ({"kernel": 9}, "less than or equal to 7"),
    ({"digit_samples": 5_000}, "less than or equal to 1437"),
    ({"line_noise": -1}, "greater than or equal to 0"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
