"""optimality_gap: certified optima, restarts measured against them, over-parameterisation."""

from __future__ import annotations

import numpy as np
import pytest

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.exact.relu import certify_relu
from gradfail.experiments.exact import optimality_gap

EXPERIMENT = registry.get("optimality_gap")


def test_no_run_in_the_box_beats_the_certified_bound(cpu_context):
    config = EXPERIMENT.config("quick", {"restarts": 16, "steps": 200, "kinds": ["xor"],
                                         "hinge_points": 8, "widths": [2, 4], "depths": [1]})
    rows = optimality_gap.solve_kind(config, "xor", 8, optimality_gap.arms(config),
                                     cpu_context)
    assert all(r["certificate"]["certified"] for r in rows)
    found = optimality_gap.check_certificate(config, {"base": rows})
    assert found.verdict == "holds" and not found.detail.startswith("0 ")


def instance(seed: int, successes: dict[str, int], restarts: int = 20, points: int = 8,
             certified: bool = True) -> dict:
    """An instance with its certified optimum 0, L₀ = 1, and per arm `successes` restarts of
    `restarts` at the optimum (the rest at the constant predictor's loss)."""
    return {"kind": "xor", "points": points, "seed": seed, "constant": 1.0,
            "certificate": {"certified": certified, "loss": 0.0, "bound": 0.0},
            "runs": {arm: {"loss": [0.0] * hit + [1.0] * (restarts - hit)}
                     for arm, hit in successes.items()}}


def test_restarts_of_one_instance_are_resampled_together():
    """Two instances, one always solved and one never: 40 restarts but only 2 instances, so
    the cluster bootstrap spans [0, 1]; counted as independent (Wilson) it would not."""
    rows = [instance(0, {"gd width 2 depth 1": 20}), instance(1, {"gd width 2 depth 1": 0})]
    found = optimality_gap.success(rows, ["gd width 2 depth 1"], 0.01)
    assert found.estimate == 0.5 and found.low == 0.0 and found.high == 1.0 and found.n == 2


def arms_at(narrow: int, wide: int) -> dict[str, int]:
    return {"gd width 2 depth 1": narrow, "adam width 2 depth 1": narrow,
            "gd width 8 depth 1": wide, "adam width 8 depth 1": wide}


@pytest.mark.parametrize("wide, verdict", [
    ([18, 19, 17, 20, 18, 19, 20, 17], "holds"),
    ([1, 2, 0, 1, 2, 0, 1, 1], "fails"),
    ([15, 1, 14, 0, 15, 0, 14, 1], "inconclusive"),
])
def test_width_is_judged_on_per_instance_differences(wide, verdict):
    config = EXPERIMENT.config("quick")  # widths [2, 8]
    rows = [instance(seed, arms_at(5, hit)) for seed, hit in enumerate(wide)]
    assert optimality_gap.check_width(config, {"base": rows}).verdict == verdict


@pytest.mark.parametrize("gd, adam, wide, verdict", [
    (5, 6, 19, "holds"),  # width adds 13.5 of 20, the optimiser 1
    (2, 14, 9, "fails"),  # the optimiser moves 12 of 20, width adds 1
])
def test_optimiser_against_width(gd, adam, wide, verdict):
    config = EXPERIMENT.config("quick")
    arms = {"gd width 2 depth 1": gd, "adam width 2 depth 1": adam, "gd width 8 depth 1": wide,
            "adam width 8 depth 1": wide}
    rows = [instance(seed, arms) for seed in range(8)]
    assert optimality_gap.check_optimiser_vs_width(config, {"base": rows}).verdict == verdict


def test_data_size_pairs_instances_by_seed_and_skips_uncertified_ones():
    config = EXPERIMENT.config("quick")  # sizes [8, 16]
    arms = {"gd width 2 depth 1": 0, "adam width 2 depth 1": 0}
    rows = [instance(seed, {**arms, "gd width 2 depth 1": hit}, points=n,
                     certified=(seed, n) != (3, 16))
            for seed in range(4) for n, hit in ((8, 18), (16, 2))]
    found = optimality_gap.check_data_size(config, {"size": rows})
    assert found.verdict == "holds" and found.interval.n == 3


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
