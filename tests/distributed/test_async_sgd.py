"""async_sgd: Downpour's staleness, the paired arms, and each claim's rule on results whose
answer is known (a clear pass, a clear fail, an interval straddling the threshold)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiment import RunContext
from gradfail.experiments.distributed import async_sgd

EXPERIMENT = registry.get("async_sgd")
SMALL = {"updates": 60, "taus": [0, 2, 4], "staleness_updates": 120, "hidden": 8}


@pytest.fixture
def ctx() -> RunContext:
    return RunContext(torch.device("cpu"), seed=0, n_seeds=2)


def test_downpour_staleness_is_n_minus_1(ctx):
    config = EXPERIMENT.config("quick", SMALL)
    rows = [async_sgd.Downpour(n).compute(config, 0.1, ctx) for n in (1, 4)]
    assert async_sgd.check_downpour(config, {"downpour": rows}).verdict == "holds"
    assert len(rows[1]["block_means"]) == async_sgd.BLOCKS


def test_alpha_over_tau_runs_tau_times_the_updates():
    config = EXPERIMENT.config("quick", SMALL)
    assert async_sgd.FixedDelay("staleness", 4).updates(config) == 4 * 60
    assert async_sgd.FixedDelay("staleness", 0).updates(config) == 60
    assert async_sgd.FixedDelay("async", 4).updates(config) == 60


def test_the_arms_are_paired_one_worker_is_the_sequential_run_bit_for_bit(ctx):
    """Sequential SGD in the fixed-delay sweep and the one-worker arm beside DC-ASGD draw the
    same minibatches in the same order from the same initialisation: identical results."""
    config = EXPERIMENT.config("quick", SMALL)
    fixed = async_sgd.FixedDelay("async", 0).compute(config, 0.3, ctx)
    alone = async_sgd.DelayCompensation("sequential").compute(config, 0.3, ctx)
    np.testing.assert_array_equal(fixed["accuracy"], alone["accuracy"])


def fixed_rows(base, stale) -> dict:
    """A result with sequential accuracies `base` and α₀/τ's `stale` (by τ), per seed."""
    rows = [{"rule": "async", "tau": 0, "accuracy": base}]
    rows += [{"rule": rule, "tau": tau, "accuracy": accuracy} for tau, accuracy in stale.items()
             for rule in ("staleness", "async")]
    return {"fixed": rows}


@pytest.mark.parametrize("stale, verdict", [
    ({2: [0.95, 0.96, 0.97, 0.96], 4: [0.951, 0.959, 0.971, 0.96]}, "holds"),
    ({2: [0.95, 0.96, 0.97, 0.96], 4: [0.70, 0.71, 0.72, 0.70]}, "fails"),
    ({2: [0.95, 0.96, 0.97, 0.96], 4: [0.99, 0.90, 0.99, 0.90]}, "inconclusive"),
])
def test_alpha_over_tau_is_judged_on_the_worst_delays_paired_drop(stale, verdict):
    config = EXPERIMENT.config("quick", {"taus": [0, 2, 4]})
    found = async_sgd.check_staleness_aware(config, fixed_rows([0.95, 0.96, 0.97, 0.96],
                                                               stale))
    assert found.verdict == verdict


def dc_rows(sequential, asynchronous, adaptive) -> dict:
    arms = {"sequential": sequential, "async": asynchronous, "dc": asynchronous,
            "dc-a": adaptive}
    return {"alpha0": 0.3, "dc": [{"rule": rule, "accuracy": accuracy,
                                   "diverged": [False] * len(accuracy)}
                                  for rule, accuracy in arms.items()]}


@pytest.mark.parametrize("adaptive, verdict", [
    ([0.95, 0.96, 0.94, 0.95], "holds"),  # closes the whole gap
    ([0.80, 0.81, 0.80, 0.79], "fails"),  # no better than async
    ([0.96, 0.80, 0.96, 0.80], "inconclusive"),
])
def test_dc_asgd_is_judged_on_the_paired_midpoint_contrast(adaptive, verdict):
    config = EXPERIMENT.config("quick")
    result = dc_rows([0.95, 0.96, 0.95, 0.95], [0.80, 0.81, 0.80, 0.80], adaptive)
    assert async_sgd.check_dc(config, result).verdict == verdict


def test_dc_asgd_is_not_checked_when_async_loses_nothing():
    sequential = [0.95, 0.96, 0.95, 0.95]
    result = dc_rows(sequential, [0.96, 0.95, 0.95, 0.95], [0.95, 0.95, 0.96, 0.95])
    assert async_sgd.check_dc(EXPERIMENT.config("quick"), result).verdict == "not checked"


@pytest.mark.parametrize("means, verdict", [
    ([1.0, 3.98], "holds"),  # n = 1 and n = 4 at their n
    ([0.75, 2.97], "fails"),  # n(1 − 1/λ) with λ = 4
])
def test_softsync_is_judged_on_block_means(means, verdict):
    config = EXPERIMENT.config("quick")  # λ = 4, n ∈ {1, 4}
    wiggle = np.linspace(-0.01, 0.01, async_sgd.BLOCKS)
    rows = [{"per_update": per_update, "mean": mean, "block_means": (mean + wiggle).tolist()}
            for per_update, mean in zip((4, 1), means, strict=True)]
    assert async_sgd.check_softsync(config, {"softsync": rows}).verdict == verdict


@pytest.mark.parametrize("backed, verdict", [(1.0, "holds"), (2.5, "fails")])
def test_backups_are_judged_on_the_per_step_time_contrast(backed, verdict):
    config = EXPERIMENT.config("quick")  # backups [0, 1]
    wiggle = 0.1 * np.sin(np.arange(200))
    rows = [{"backups": b, "accuracy": [0.9, 0.9], "step_times": (mean + wiggle).tolist()}
            for b, mean in ((0, 3.0), (1, backed))]
    assert async_sgd.check_backups(config, {"sync": rows}).verdict == verdict


@pytest.mark.parametrize("two, loss, verdict", [
    ([200.0, 210.0, 190.0], 0.5, "holds"),
    ([100.0, 105.0, 98.0], 0.5, "fails"),  # no speed-up
    ([200.0, 210.0, 190.0], 0.6, "fails"),  # the loss moved by 20%
])
def test_hogwild_needs_both_the_speed_up_and_the_same_loss(two, loss, verdict):
    pairs = [[{"samples_per_s": 100.0, "loss": 0.5}, {"samples_per_s": s, "loss": loss}]
             for s in two]
    found = async_sgd.check_hogwild(EXPERIMENT.config("quick"),
                                    {"hogwild": {"pairs": pairs, "initial_loss": 0.69}})
    assert found.verdict == verdict


@pytest.mark.parametrize("changes, message", [
    ({"workers": [0, 4]}, "greater than 0"),
    ({"taus": [-1, 4]}, "greater than or equal to 0"),
    ({"straggler_p": 2}, "less than or equal to 1"),
    ({"dc_momentum": 1}, "less than 1"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
