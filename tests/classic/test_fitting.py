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


def test_more_data_shrinks_the_generalisation_gap(quick_store):
    (run,) = quick_store.runs(experiment="fitting")
    verdicts = {c["name"]: c["verdict"] for c in run["claims"]}
    assert verdicts["more data closes the gap"] == "holds"
    assert verdicts["double descent"] == "holds"


def test_dropout_draws_from_the_run_generator_so_runs_repeat(cpu_context):
    config = EXPERIMENT.config("quick", {"steps": 30, "eval_every": 30})
    first = fitting.train(config, 60, 32, ("dropout",), cpu_context, "repeat")
    second = fitting.train(config, 60, 32, ("dropout",), cpu_context, "repeat")
    np.testing.assert_array_equal(first["test_accuracy"], second["test_accuracy"])


def test_early_stopping_reports_the_best_validation_step(cpu_context):
    config = EXPERIMENT.config("quick", {"steps": 200, "eval_every": 20})
    run = fitting.train(config, 100, 32, ("early stopping",), cpu_context, "stop")
    assert run["n"] == 100 and len(run["final_test"]) == cpu_context.n_seeds
    assert all(value in row for value, row in zip(run["final_test"], run["test_accuracy"]))


def test_the_interval_is_a_t_interval():
    mean, half = fitting.interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1 / np.sqrt(3), rel=1e-3)


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
