"""Optimisers: the batched lr grid is torch's optimiser per lr; the problems; Wilson's example."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiment import RunContext
from gradfail.experiments.classic import optimizers
from gradfail.nets.problems import adaptive_methods_example, quadratic

EXPERIMENT = registry.get("optimizers")


@pytest.mark.parametrize("name", ["momentum", "adam", "rmsprop"])
def test_one_batched_sweep_equals_separate_runs_at_each_lr(name):
    config = EXPERIMENT.config("quick", {"lrs": [1e-3, 1e-1], "steps": 20, "eval_every": 20,
                                         "condition_numbers": [100]})
    ctx = RunContext(torch.device("cpu"), seed=0, n_seeds=2)
    problem = quadratic(100, config.quadratic_dim, ctx)
    together = optimizers.sweep(config, problem, name, ctx)["errors"]
    for i, lr in enumerate(config.lrs):
        alone = optimizers.sweep(config.model_copy(update={"lrs": [lr]}), problem, name, ctx)
        np.testing.assert_allclose(together[i], alone["errors"][0], rtol=1e-5)


def test_summary_reads_best_error_steps_and_lr_range():
    run = {"steps": [0, 10, 20], "threshold": 0.1,
           "errors": np.array([[[1, 0.5, 0.2]], [[1, 0.05, 0.01]], [[1, np.inf, np.inf]]])}
    numbers = optimizers.summary(run, [0.01, 0.1, 1.0])
    assert numbers == {"best_final": 0.01, "best_lr": 0.1, "steps_to_threshold": 10,
                     "lrs_reaching": 1}


def test_momentum_needs_fewer_steps_on_an_ill_conditioned_quadratic(cpu_context):
    config = EXPERIMENT.config("quick", {"lrs": [0.1, 0.3, 1.0], "steps": 400,
                                         "eval_every": 10})
    problem = quadratic(1_000, config.quadratic_dim, cpu_context)
    steps = {name: optimizers.summary(optimizers.sweep(config, problem, name, cpu_context),
                                      config.lrs)["steps_to_threshold"]
             for name in ("sgd", "momentum")}
    assert steps["momentum"] < steps["sgd"]


def test_wilson_data_has_private_features_and_a_positive_majority():
    config = EXPERIMENT.config("quick")
    x, y, test_x, test_y = adaptive_methods_example(config.wilson_points, config.wilson_test, 0.6,
                                                    torch.Generator().manual_seed(0))
    assert y.sum() > 0
    private = x[:, 3:]
    assert (private.sum(1) == torch.where(y > 0, 1.0, 5.0)).all()
    assert (private.sum(0) == 1).all()  # each private feature belongs to one point
    assert test_x.shape[1] == 3 and (test_x[:, 0] == test_y).all()


def test_the_lr_is_picked_on_some_seeds_and_judged_on_the_others():
    # lr 0 reaches the threshold at step 10 on the picking seed, lr 1 at step 20; the judged
    # seeds are read at lr 0 whatever they did at lr 1
    errors = np.ones((2, 3, 4))
    errors[0, 0, 1:] = errors[1, 0, 2:] = 0.0
    errors[0, 1, 3:] = errors[1, 1, 1:] = errors[1, 2, 1:] = 0.0
    run = {"steps": [0, 10, 20, 30], "threshold": 0.1, "errors": errors}
    picked, judged = optimizers.steps_at_picked_lr(run)
    assert picked == 10 and judged.tolist() == [30.0, 40.0]  # never: budget + eval_every
    assert not optimizers.deterministic(run)
    assert optimizers.deterministic({"errors": np.ones((2, 3, 4))})


def quadratic_sweeps(sgd_steps: int, momentum_steps: int) -> dict:
    """Deterministic runs (every seed alike) reaching the threshold at the given steps."""
    def run(name, at):
        curve = np.where(np.arange(0, 1_001, 25) >= at, 1e-4, 1.0)
        return {"problem": "quadratic κ=1000", "optimizer": name, "threshold": 1e-3,
                "steps": list(range(0, 1_001, 25)), "errors": np.tile(curve, (2, 3, 1))}
    return {"sweeps": [run("sgd", sgd_steps), run("momentum", momentum_steps)]}


@pytest.mark.parametrize("sgd_steps, momentum_steps, verdict", [(500, 100, "holds"),
                                                                (100, 500, "fails")])
def test_momentum_on_a_deterministic_quadratic_is_judged_exactly(sgd_steps, momentum_steps,
                                                                 verdict):
    config = EXPERIMENT.config("quick", {"optimizers": ["sgd", "momentum"],
                                         "problems": ["quadratic"],
                                         "condition_numbers": [1_000]})
    check = optimizers.check_momentum(config, quadratic_sweeps(sgd_steps, momentum_steps))
    assert check.verdict == verdict and check.interval.method.startswith("exact")


def test_adam_is_less_sensitive_when_its_range_is_wider_on_most_problems():
    config = EXPERIMENT.config("quick", {"optimizers": ["sgd", "adam"],
                                         "lrs": [0.001, 0.01, 0.1, 1.0]})

    def run(problem, name, reaching):  # the first `reaching` lrs end below the threshold
        final = np.where(np.arange(4) < reaching, 0.0, 1.0)
        return {"problem": problem, "optimizer": name, "threshold": 0.5, "steps": [0, 10],
                "errors": np.stack([np.ones((4, 3)), np.tile(final[:, None], 3)], -1)}

    def result(adam, sgd):
        return {"sweeps": [run(f"problem {i}", name, count) for i in range(8)
                           for name, count in (("adam", adam), ("sgd", sgd))]}
    assert optimizers.check_adam_robust(config, result(3, 1)).verdict == "holds"
    assert optimizers.check_adam_robust(config, result(1, 3)).verdict == "fails"


@pytest.mark.parametrize("changes, message", [
    ({"optimizers": ["adamax"]}, "unknown optimiser 'adamax'"),
    ({"problems": ["mnist"]}, "unknown problem 'mnist'"),
    ({"lrs": [0.1, 0.01]}, "strictly increasing"),
    ({"lrs": [0.1]}, "at least 2"),
    ({"lrs": [-0.1, 0.1]}, "greater than 0"),
    ({"wilson_p": [0.4]}, r"\(0.5, 1\)"),
    ({"steps": 0}, "greater than 0"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)


def test_the_fastest_optimiser_breaks_ties_by_final_error():
    by_optimizer = {"sgd": {"steps_to_threshold": 50, "best_final": 0.2},
                    "adam": {"steps_to_threshold": 50, "best_final": 0.1},
                    "rmsprop": {"steps_to_threshold": 100, "best_final": 0.0}}
    assert optimizers.fastest(by_optimizer) == "adam"
    never = {"sgd": {"steps_to_threshold": float("inf"), "best_final": 0.5}}
    assert optimizers.fastest(never) is None
