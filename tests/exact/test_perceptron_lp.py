"""perceptron_lp: the LP answers separability exactly; the gradient methods cannot say "no"."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.exact.threshold import separate
from gradfail.experiments.exact import perceptron_lp

EXPERIMENT = registry.get("perceptron_lp")


def test_the_lp_is_exact_and_the_perceptron_keeps_novikoffs_bound(cpu_context):
    config = EXPERIMENT.config("quick", {"sizes": [100], "margins": [0.1, 0.05],
                                         "gd_steps": 200})
    cells = [perceptron_lp.solve_cell(config, 100, margin, cpu_context)
             for margin in (0.1, 0.05, None)]
    result = {"separable": cells[:2], "inseparable": cells[2:]}
    assert perceptron_lp.check_lp_exact(config, result).verdict == "holds"
    assert perceptron_lp.check_novikoff(config, result).verdict == "holds"


def test_the_margin_slopes_are_per_seed_least_squares_fits():
    cells = [{"n": 10, "margin": m, "perceptron_updates": [u, 2 * u], "lp_seconds": [0.1, t]}
             for m, u, t in ((0.1, 10, 0.2), (0.01, 1_000, 0.3), (0.001, 50_000, 0.2))]
    updates, seconds = perceptron_lp.margin_slopes({"separable": cells}, 10)
    inverse = np.log([10, 100, 1_000])
    for seed in range(2):
        np.testing.assert_allclose(updates[seed], np.polyfit(inverse, np.log(
            [c["perceptron_updates"][seed] for c in cells]), 1)[0])
        np.testing.assert_allclose(seconds[seed], np.polyfit(inverse, np.log(
            [c["lp_seconds"][seed] for c in cells]), 1)[0])


@pytest.mark.parametrize("updates, seconds, verdict", [
    ([1.9, 2.0, 2.1, 2.0], [0.01, -0.02, 0.0, 0.02], "holds"),
    ([0.1, 0.0, 0.2, 0.1], [0.01, -0.02, 0.0, 0.02], "fails"),  # the perceptron does not slow
    ([1.9, 2.0, 2.1, 2.0], [0.9, 1.0, 1.1, 1.0], "fails"),  # the LP slows too
    ([1.9, 2.0, 2.1, 2.0], [0.3, -0.3, 0.25, -0.25], "inconclusive"),
])
def test_margin_scaling_needs_both_slopes(monkeypatch, updates, seconds, verdict):
    monkeypatch.setattr(perceptron_lp, "margin_slopes", lambda *_: (np.array(updates),
                                                                   np.array(seconds)))
    result = {"separable": [{"n": 1_000, "perceptron_stopped": [True] * 4}]}
    found = perceptron_lp.check_margin_scaling(EXPERIMENT.config("quick"), result)
    assert found.verdict == verdict


def test_planted_points_keep_their_margin_and_the_twin_is_not_separable():
    x, labels, normal = perceptron_lp.planted(300, 5, 0.05, torch.Generator().manual_seed(0))
    assert (labels * (x @ normal) >= 0.05).all() and (np.linalg.norm(x, axis=1) <= 1).all()
    twin_x, twin_labels = perceptron_lp.inseparable_twin(x, labels, 0.01,
                                                         torch.Generator().manual_seed(1))
    assert len(twin_x) == 303 and separate(x, labels).separable
    assert not separate(twin_x, twin_labels).separable


def test_the_perceptron_stops_on_separable_data_and_never_on_the_twin():
    x, labels, _ = perceptron_lp.planted(200, 3, 0.05, torch.Generator().manual_seed(2))
    done = perceptron_lp.perceptron(x, labels, 10_000)
    assert done["stopped"] and 0 < done["updates"] <= 10_000
    twin = perceptron_lp.inseparable_twin(x, labels, 0.01, torch.Generator().manual_seed(3))
    assert not perceptron_lp.perceptron(*twin, 2_000)["stopped"]
    gd = perceptron_lp.logistic_gd(np.stack([x, x]), np.stack([labels, labels]), 20_000, 1.0)
    assert (gd["separated_at"] > 0).all() and gd["separated_at"][0] == gd["separated_at"][1]


@pytest.mark.parametrize("changes, message", [
    ({"margins": [0.1, 1.5]}, "strictly between 0 and 1"),
    ({"sizes": [-10]}, "greater than 0"),
    ({"time_limit": 0}, "greater than 0"),
    ({"noisy_fraction": "some"}, "valid number"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
