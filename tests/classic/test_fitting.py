"""Fitting: capacity and data, the remedies, augmentation, double descent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiments.classic import fitting

EXPERIMENT = registry.get("fitting")


def test_augmentation_without_shift_or_rotation_is_the_identity():
    config = EXPERIMENT.config("quick", {"max_shift": 0.0, "max_rotation": 0.0})
    images = torch.randn(2, 5, 64)
    torch.testing.assert_close(fitting.augment(images, config, torch.Generator()), images,
                               atol=1e-5, rtol=0)


def test_a_one_pixel_shift_moves_a_bright_pixel_by_one():
    config = EXPERIMENT.config("quick", {"max_shift": 1.0, "max_rotation": 0.0})
    image = torch.zeros(1, 64)
    image[0, 3 * 8 + 3] = 1.0
    moved = fitting.augment(image.repeat(200, 1), config, torch.Generator().manual_seed(0))
    rows, columns = np.unravel_index(moved.reshape(200, 64).argmax(1).numpy(), (8, 8))
    assert np.abs(rows - 3).max() <= 1 and np.abs(columns - 3).max() <= 1
    assert (rows != 3).any() and (columns != 3).any()


def test_dropout_draws_from_the_run_generator_so_runs_repeat(cpu_context):
    config = EXPERIMENT.config("quick", {"steps": 30, "eval_every": 30})
    first = fitting.train(config, 60, 32, ("dropout",), cpu_context, "repeat")
    second = fitting.train(config, 60, 32, ("dropout",), cpu_context, "repeat")
    np.testing.assert_array_equal(first["test_accuracy"], second["test_accuracy"])


def test_early_stopping_reports_the_best_validation_step(cpu_context):
    config = EXPERIMENT.config("quick", {"steps": 200, "eval_every": 20})
    run = fitting.train(config, 100, 32, ("early stopping",), cpu_context, "stop", held=20)
    assert run["n"] == 100 and len(run["final_test"]) == cpu_context.n_seeds
    assert all(value in row for value, row in zip(run["final_test"], run["test_accuracy"]))
    np.testing.assert_allclose(np.asarray(run["final_test_correct"]).mean(1), run["final_test"])


def test_early_stopping_trains_on_the_images_the_baseline_trains_on(cpu_context):
    config = EXPERIMENT.config("quick", {"steps": 1, "eval_every": 1})
    plain = fitting.train(config, 100, 8, (), cpu_context, "same", held=20)
    stopped = fitting.train(config, 100, 8, ("early stopping",), cpu_context, "same", held=20)
    assert plain["trained_on"] == stopped["trained_on"] == 80
    np.testing.assert_array_equal(plain["train_accuracy"][:, 0], stopped["train_accuracy"][:, 0])
    with pytest.raises(ValueError, match="held-out"):
        fitting.train(config, 100, 8, ("early stopping",), cpu_context, "same")


def test_the_paired_gain_is_the_two_way_bootstrap_written_out():
    rng = np.random.default_rng(1)
    treated, plain = rng.random((4, 300)) < 0.9, rng.random((4, 300)) < 0.8
    found = fitting.paired_gain(treated, plain)
    difference = treated.astype(float) - plain
    replicates = [difference[rng.integers(4, size=4)][:, rng.integers(300, size=300)].mean()
                  for _ in range(4_000)]
    assert found.estimate == pytest.approx(difference.mean())
    assert found.low == pytest.approx(np.quantile(replicates, 0.025), abs=0.01)
    assert found.high == pytest.approx(np.quantile(replicates, 0.975), abs=0.01)


def remedies_result(gain_images: int, n_images: int = 360) -> dict:
    """A plain net right on the first 300 test images of each of 3 seeds; every arm gains
    `gain_images` more (or loses, below 0)."""
    def arm(remedies, extra):
        correct = np.zeros((3, n_images), dtype=np.int8)
        correct[:, : 300 + extra] = 1
        return {"remedies": list(remedies), "final_test_correct": correct,
                "final_test": correct.mean(1), "test_accuracy": correct.mean(1)[:, None],
                "final_train": np.ones(3), "trained_on": 160}
    return {"remedies": [arm((), 0), *(arm((r,), gain_images) for r in fitting.REMEDIES),
                         arm(fitting.REMEDIES, gain_images)]}


@pytest.mark.parametrize("gain_images, verdict", [(30, "holds"), (-30, "fails"),
                                                  (1, "inconclusive")])
def test_a_remedy_is_judged_on_its_gain_over_seeds_and_test_images(gain_images, verdict):
    """One image per seed (the issue's case) is no evidence: the test images are a sample."""
    check = fitting.remedy_claim("L2").check(EXPERIMENT.config("quick"),
                                             remedies_result(gain_images))
    assert check.verdict == verdict


def test_capacity_picks_the_narrower_width_on_other_images_than_it_judges():
    config = EXPERIMENT.config("quick", {"widths": [4, 64, 256]})
    wide = np.zeros((3, 360), dtype=np.int8)
    wide[:, :300] = 1
    narrow = wide.copy()
    narrow[:, 300:340] = 1  # right on 40 more images, odd and even alike
    runs = [{"final_test_correct": c, "final_train": np.ones(3)} for c in (wide, narrow, wide)]
    assert fitting.check_capacity(config, {"width_sweep": runs}).verdict == "holds"
    runs = [{"final_test_correct": c, "final_train": np.ones(3)} for c in (wide, wide, narrow)]
    assert fitting.check_capacity(config, {"width_sweep": runs}).verdict == "fails"


def test_double_descent_is_a_peak_near_n_above_both_ends():
    config = EXPERIMENT.config("quick")
    features = [20, 100, 200, 400, 1_600]
    peaked = {"features": features, "n": 200, "test_error": np.zeros((3, 5)),
              "test_mse": np.array([[1.0, 3.0, 100.0, 5.0, 0.5]] * 3) * [[1.0], [1.1], [0.9]]}
    assert fitting.check_double_descent(config, {"double_descent": peaked}).verdict == "holds"
    flat = {**peaked, "test_mse": np.array([[1.0, 0.8, 0.6, 0.5, 0.4]] * 3) * [[1], [1.1], [0.9]]}
    assert fitting.check_double_descent(config, {"double_descent": flat}).verdict == "fails"


@pytest.mark.parametrize("changes, message", [
    ({"sizes": [100, 5_000]}, "must not exceed"),
    ({"dropout": 1.0}, "less than 1"),
    ({"widths": [0, 4]}, "greater than 0"),
    ({"max_rotation": -5}, "greater than or equal to 0"),
    ({"weight_decay": "lots"}, "valid number"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
