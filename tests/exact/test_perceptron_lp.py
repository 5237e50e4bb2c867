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


def test_the_lp_is_exact_and_the_perceptron_keeps_novikoffs_bound(quick_store):
    (run,) = quick_store.runs(experiment="perceptron_lp")
    verdicts = {c["name"]: c["verdict"] for c in run["claims"]}
    assert verdicts["the LP decides separability exactly"] == "holds"
    assert verdicts["Novikoff's bound"] == "holds"


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
