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


def at_init(ratios_by_init: dict[tuple[str, str], np.ndarray], depths: list[int]) -> dict:
    """NaN-padded (seeds, depths, layers) norms whose first/last ratio is the given one."""
    plain: dict = {}
    for (activation, init), ratios in ratios_by_init.items():
        norms = np.full((*ratios.shape, max(depths)), np.nan)
        for i, layers in enumerate(depths):
            norms[:, i, :layers] = 1.0
            norms[:, i, 0] = ratios[:, i]
        plain.setdefault(activation, {})[init] = norms
    return {"at_init": {"plain": plain}}


@pytest.mark.parametrize("rate, verdict", [(-0.3, "holds"), (0.05, "fails")])
def test_the_sigmoid_decay_is_judged_on_the_per_seed_slope(rate, verdict):
    depths = [2, 8, 32]
    config = EXPERIMENT.config("quick", {"init_depths": depths})
    noise = np.array([[1.0], [1.2], [0.8]])
    decaying = np.exp(rate * np.array(depths, dtype=float))[None] * noise
    result = at_init({("sigmoid", "normal"): decaying, ("sigmoid", "small"): decaying}, depths)
    assert depth.check_sigmoid_decay(config, result).verdict == verdict


@pytest.mark.parametrize("ratio, verdict", [(3.0, "holds"), (100.0, "fails")])
def test_he_relu_is_judged_on_the_largest_log_ratio_per_seed(ratio, verdict):
    depths = [2, 8, 32]
    config = EXPERIMENT.config("quick", {"init_depths": depths})
    ratios = np.array([[1.0, ratio, ratio * 1.1], [1.0, ratio * 0.9, ratio], [1.0, ratio, ratio]])
    result = at_init({("relu", "he"): ratios}, depths)
    assert depth.check_he_relu(config, result).verdict == verdict


@pytest.mark.parametrize("remedy, plain, verdict", [(5, 0, "holds"), (0, 5, "fails"),
                                                    (3, 2, "inconclusive")])
def test_the_remedy_is_judged_against_the_better_plain_net(remedy, plain, verdict):
    def run(label, reached):
        steps = np.where(np.arange(5) < reached, 100.0, np.nan)
        return {"net": label, "depth": 32, "steps_to_target": steps}
    result = {"training": [run("sigmoid · glorot, residual + batch norm", remedy),
                           run("sigmoid · normal", 0), run("sigmoid · glorot", plain)]}
    assert depth.check_remedy(EXPERIMENT.config("quick"), result).verdict == verdict


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
