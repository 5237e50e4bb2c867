"""Deep linear networks: the mode equation, the decoupled init, per-model learning rates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiments.classic import deep_linear

EXPERIMENT = registry.get("deep_linear")


def test_the_mode_equation_at_depth_two_is_the_logistic_curve():
    s, lr, start = np.array([3.0, 0.5]), 0.01, 0.01
    steps = np.linspace(0, 2_000, 41)
    logistic = s[:, None] / (1 + (s[:, None] / start - 1) * np.exp(-2 * s[:, None] * lr * steps))
    np.testing.assert_allclose(deep_linear.mode_equation(s, 2, lr, start, steps), logistic,
                               rtol=1e-5, atol=1e-7)


def test_the_decoupled_init_is_balanced_and_aligned_with_the_teacher(cpu_context):
    config = EXPERIMENT.config("quick")
    task = deep_linear.teacher(config, cpu_context)
    layers = deep_linear.decoupled_init(task, 3, 0.01, cpu_context)
    expected = 0.01 * task["u"] @ task["v"].transpose(1, 2)
    torch.testing.assert_close(deep_linear.product(layers), expected, atol=1e-6, rtol=1e-4)
    for lower, upper in zip(layers, layers[1:]):  # W_(l+1)ᵀW_(l+1) = W_l W_lᵀ
        torch.testing.assert_close(upper.transpose(1, 2) @ upper, lower @ lower.transpose(1, 2),
                                   atol=1e-6, rtol=1e-4)


def test_a_learning_rate_per_model_is_plain_gd_at_that_rate(cpu_context):
    config = EXPERIMENT.config("quick")
    target = deep_linear.teacher(config, cpu_context)["t"][:1].expand(2, -1, -1)
    generator = torch.Generator().manual_seed(3)
    layers = [torch.randn(1, 8, 8, generator=generator).expand(2, -1, -1) / 8 for _ in range(3)]
    together = deep_linear.gradient_descent(layers, target, torch.tensor([0.01, 0.03]), 50,
                                            lambda n: None)["loss"]
    for model, lr in enumerate([0.01, 0.03]):
        alone = deep_linear.gradient_descent([w[model:model + 1] for w in layers],
                                             target[:1], torch.tensor([lr]), 50,
                                             lambda n: None)["loss"]
        torch.testing.assert_close(together[model], alone[0])


def depth_result(times: dict[str, list[list[float]]]) -> dict:
    """Steps to criterion per init, as [depth 1, depth 2, depth 8] × seeds."""
    return {"depths": [{"depth": depth,
                        "steps_to_criterion": {init: rows[i] for init, rows in times.items()},
                        "best_scaled_lr": {init: [0.1] * len(rows[i])
                                           for init, rows in times.items()}}
                       for i, depth in enumerate([1, 2, 8])]}


NEVER = float("nan")


@pytest.mark.parametrize("at_two, at_eight, verdict", [
    ([20, 22, 21], [25, 26, 24], "holds"),
    ([20, 22, 21], [200, 260, 230], "fails"),
    ([20, 22, 21], [25, 200, 60], "inconclusive"),
])
def test_orthogonal_is_judged_on_the_deepest_over_depth_two(at_two, at_eight, verdict):
    config = EXPERIMENT.config("quick", {"depths": [1, 2, 8]})
    result = depth_result({"orthogonal": [[10, 10, 10], at_two, at_eight]})
    assert deep_linear.check_orthogonal(config, result).verdict == verdict


def test_random_inits_are_judged_on_the_same_ratio_never_counting_as_the_budget():
    config = EXPERIMENT.config("quick", {"depths": [1, 2, 8], "steps": 1_500})
    slow = depth_result({"small": [[10] * 3, [60, 62, 61], [NEVER] * 3],
                         "lecun": [[10] * 3, [24, 25, 23], [900, 1_000, 800]]})
    assert deep_linear.check_random(config, slow).verdict == "holds"
    flat = depth_result({"small": [[10] * 3, [60, 62, 61], [70, 75, 72]],
                         "lecun": [[10] * 3, [24, 25, 23], [NEVER] * 3]})
    assert deep_linear.check_random(config, flat).verdict == "fails"  # the smaller ratio
    stuck = depth_result({"small": [[10] * 3, [NEVER, 62, 61], [NEVER] * 3]})
    config = config.model_copy(update={"inits": ["small"]})
    assert deep_linear.check_random(config, stuck).verdict == "not checked"


@pytest.mark.parametrize("changes, message", [
    ({"inits": ["ortho"]}, "unknown init 'ortho'"),
    ({"smallest_mode": 5.0}, "below largest_mode"),
    ({"criterion": 1.0}, "less than 1"),
    ({"depths": [0, 2]}, "greater than 0"),
    ({"width": 0}, "greater than 0"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
