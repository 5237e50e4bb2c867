"""Depth: vanishing gradients at init, He init for ReLU, and residual + BN training deep nets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiments.classic import depth
from gradfail.nets.deep import DeepMLP, initial_weights

EXPERIMENT = registry.get("depth")


def test_inits_have_the_variances_they_name():
    generator = torch.Generator().manual_seed(0)
    for init, variance in [("normal", 1.0), ("small", 1e-4), ("lecun", 1 / 400),
                           ("he", 2 / 400), ("glorot", 2 / 800)]:
        weights = initial_weights(init, "relu", 2, 400, 400, generator, torch.device("cpu"))
        assert weights.var().item() == pytest.approx(variance, rel=0.02), init
    orthogonal = initial_weights("orthogonal", "tanh", 2, 50, 50, generator, torch.device("cpu"))
    gain = 5 / 3  # torch's gain for tanh
    torch.testing.assert_close(orthogonal[1].T @ orthogonal[1], gain**2 * torch.eye(50),
                               atol=1e-4, rtol=0)


def test_sigmoid_gradients_vanish_with_depth_and_he_relu_ones_do_not(cpu_context):
    config = EXPERIMENT.config("quick", {"init_depths": [2, 16], "activations": ["sigmoid",
                                         "relu"], "inits": ["small", "glorot", "he"]})
    norms = depth.gradient_norms_at_init(config, "plain", cpu_context)
    sigmoid = depth.first_over_last(norms["sigmoid"]["glorot"])
    assert (sigmoid[:, 1] < 1e-3 * sigmoid[:, 0]).all()  # 14 more layers: orders of magnitude
    assert (depth.first_over_last(norms["sigmoid"]["small"])[:, 1] < 1e-20).all()
    he = depth.first_over_last(norms["relu"]["he"])
    assert (np.abs(np.log10(he)) < 1).all()


def test_batch_norm_and_residual_keep_sigmoid_gradients_at_depth(cpu_context):
    config = EXPERIMENT.config("quick", {"init_depths": [2, 16], "activations": ["tanh"],
                                         "inits": ["normal"]})
    plain = depth.first_over_last(
        depth.gradient_norms_at_init(config, "plain", cpu_context)["tanh"]["normal"])
    both = depth.first_over_last(depth.gradient_norms_at_init(
        config, "residual + batch norm", cpu_context)["tanh"]["normal"])
    assert (plain[:, 1] > 1e3).all() and (np.abs(np.log10(both)) < 1).all()


def test_exponential_fit_recovers_a_known_rate():
    depths = [2, 4, 8, 16]
    slope, r2 = depth.exponential_fit(depths, [[np.exp(-0.5 * d) for d in depths]] * 2)
    assert slope == pytest.approx(-0.5) and r2 == pytest.approx(1.0)


def test_quick_run_shows_all_three_effects(quick_store):
    (run,) = quick_store.runs(experiment="depth")
    assert [c["verdict"] for c in run["claims"]] == ["holds"] * 3


def test_a_diverging_seed_does_not_reach_the_target_and_leaves_the_others(cpu_context):
    config = EXPERIMENT.config("quick", {"lr": 50.0, "steps": 50, "eval_every": 10})
    net = depth.Net(activation="relu", init="he")
    run = depth.train(config, net, 4, cpu_context)
    assert np.isnan(np.asarray(run["steps_to_target"], dtype=float)).all()
    assert run["ran"] <= 50


@pytest.mark.parametrize("changes, message", [
    ({"inits": ["xavier"]}, "unknown init 'xavier'"),
    ({"activations": ["gelu"]}, "unknown activation 'gelu'"),
    ({"nets": [{"activation": "relu", "init": "he", "architecture": "dense"}]},
     "unknown architecture 'dense'"),
    ({"train_depths": [0]}, "greater than 0"),
    ({"width": -3}, "greater than 0"),
    ({"target_accuracy": 1.5}, "less than or equal to 1"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)


def test_a_network_needs_positive_depth():
    with pytest.raises(ConfigError, match="depth ≥ 1"):
        DeepMLP(1, 4, 8, 0, 2, "relu", "he", torch.Generator(), torch.device("cpu"))
