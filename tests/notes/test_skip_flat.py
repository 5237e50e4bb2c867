"""skip_flat: the skipping convolution is exact on flat patches; what it skips grows with the
threshold; the threshold is chosen on validation and the claims judged by their intervals on
test; bad thresholds and sizes are one-line errors."""

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


def test_skipping_grows_with_the_threshold_and_noise_hides_no_flat_patch():
    noise = 0.1 * torch.randn(8, 28, 28, generator=torch.Generator().manual_seed(0))
    filters, bias = torch.randn(5, 9), torch.randn(5)
    skipped = [sf.skip_convolution(noise, filters, bias, 3, t)[1] for t in (0.0, 0.004, 0.04)]
    assert skipped == sorted(skipped)
    assert skipped[0] == 0 and skipped[-1] > 0.95  # σ = 0.1: a patch's variance ≈ 0.009


def test_the_exact_claim_holds_on_a_quick_run(quick_store):
    (run,) = quick_store.runs(experiment="skip_flat")
    exact = next(c for c in run["claims"] if c["name"].startswith("the flat answer is exact"))
    assert exact["verdict"] == "holds"


def constructed(test_skipped: float, test_loss: list[float], seconds_ratio: list[float]
                ) -> dict:
    """A sweep per data set over thresholds 0 and 0.1: on validation, 0.1 skips 90% within the
    tolerance; on test it skips `test_skipped` of 100 patches and changes accuracy by
    `test_loss` per seed."""
    def sweep(dataset: str) -> dict:
        dense = [0.9, 0.9, 0.9]
        rows = [{"threshold": 0.0, "validation_skipped": 0.0, "validation_accuracy": dense,
                 "test_skipped_patches": [0] * 50, "test_accuracy": dense,
                 "speedups": [0.5] * 5},
                {"threshold": 0.1, "validation_skipped": 0.9, "validation_accuracy":
                 [0.895] * 3, "test_skipped_patches": [round(100 * test_skipped)] * 49 + [100],
                 "test_accuracy": [0.9 + d for d in test_loss], "speedups": seconds_ratio}]
        return {"dataset": dataset, "dense_accuracy": {"validation": dense, "test": dense},
                "rows": rows, "patches": 100, "images": 50, "dense_seconds": 0.01,
                "im2col_seconds": 0.02}
    return {"sweeps": [sweep(d) for d in sf.DATASETS]}


def test_the_threshold_is_chosen_on_the_validation_half():
    result = constructed(0.2, [-0.5, -0.5, -0.5], [2.0] * 5)  # terrible on test: not seen
    assert [sf.chosen(s)["threshold"] for s in result["sweeps"]] == [0.1, 0.1]


@pytest.mark.parametrize("test_skipped, test_loss, verdict", [
    (0.8, [0.0, -0.002, 0.001], "holds"),
    (0.3, [0.0, -0.002, 0.001], "fails"),  # too few skipped
    (0.8, [-0.05, -0.06, -0.05], "fails"),  # accuracy lost
    (0.8, [-0.03, 0.02, 0.0], "inconclusive"),
])
def test_free_skipping_needs_both_the_fraction_and_the_accuracy(test_skipped, test_loss,
                                                                 verdict):
    result = constructed(test_skipped, test_loss, [2.0] * 5)
    assert sf.check_free(EXPERIMENT.config("quick"), result).verdict == verdict


@pytest.mark.parametrize("ratios, verdict", [
    ([1.5, 1.6, 1.4, 1.7, 1.5], "holds"),
    ([0.2, 0.3, 0.2, 0.25, 0.2], "fails"),
    ([0.8, 1.2, 0.9, 1.1, 1.3], "inconclusive"),
])
def test_the_time_check_judges_the_median_ratio_over_repeats(ratios, verdict):
    result = constructed(0.8, [0.0, 0.0, 0.0], ratios)
    assert sf.check_time(EXPERIMENT.config("quick"), result).verdict == verdict


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
