"""optimality_gap: certified optima, restarts measured against them, over-parameterisation."""

from __future__ import annotations

import numpy as np
import pytest

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.exact.relu import certify_relu
from gradfail.experiments.exact import optimality_gap

EXPERIMENT = registry.get("optimality_gap")


@pytest.fixture(scope="module")
def claims(quick_store):
    (run,) = quick_store.runs(experiment="optimality_gap")
    return {c["name"]: c for c in run["claims"]}


def test_no_run_in_the_box_beats_the_certified_bound(claims):
    assert claims["the MILP bound is a certificate"]["verdict"] == "holds"


def test_width_closes_the_gap_that_restarts_at_the_certified_width_leave(claims):
    assert claims["a single GD run misses the certified optimum"]["verdict"] == "holds"
    assert claims["over-parameterisation closes the gap"]["verdict"] == "holds"


def test_a_realizable_teacher_has_a_certified_optimum_of_zero(cpu_context):
    config = EXPERIMENT.config("quick")
    x, targets = optimality_gap.instance("teacher", 10, config, cpu_context.generator("t"))
    found = certify_relu(x, targets, 2, "l1", config.box)
    assert found.certified and found.loss < 1e-9


def test_restarts_are_batched_per_data_set_and_repeat(cpu_context):
    config = EXPERIMENT.config("quick", {"restarts": 4, "steps": 50})
    x, targets = optimality_gap.instance("xor", 8, config, cpu_context.generator("x"))
    data = np.stack([x, x]), np.stack([targets, targets])
    first = optimality_gap.train(*data, "hinge", "adam", 2, 1, config,
                                 cpu_context.generator("r"))
    again = optimality_gap.train(*data, "hinge", "adam", 2, 1, config,
                                 cpu_context.generator("r"))
    assert first["loss"].shape == (2, 4) and first["in_box"].shape == (2, 4)
    np.testing.assert_array_equal(first["loss"], again["loss"])


def test_the_constant_predictor_losses():
    assert optimality_gap.constant_loss(np.array([0.0, 1.0, 5.0]), "l1") == 5.0
    assert optimality_gap.constant_loss(np.array([1.0, 1.0, -1.0]), "hinge") == 2.0


@pytest.mark.parametrize("changes, message", [
    ({"kinds": ["teacher", "spirals"]}, "unknown instance kind 'spirals'"),
    ({"width": 5}, "less than or equal to 4"),
    ({"restarts": 0}, "greater than 0"),
    ({"time_limit": 0}, "greater than 0"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
