"""async_sgd: Downpour's staleness, what it does to the fixed step, and the remedies."""

from __future__ import annotations

import numpy as np
import pytest

from gradfail import registry
from gradfail.errors import ConfigError

EXPERIMENT = registry.get("async_sgd")


@pytest.fixture(scope="module")
def run(quick_store):
    (stored_run,) = quick_store.runs(experiment="async_sgd")
    return stored_run


def test_downpour_staleness_is_n_minus_1(run):
    verdicts = {c["name"]: c["verdict"] for c in run["claims"]}
    assert verdicts["Downpour: mean τ = N − 1"] == "holds"


def test_staleness_hurts_the_fixed_step_and_alpha_over_tau_recovers(run):
    fixed = {(r["rule"], r["tau"]): np.mean(r["accuracy"]) for r in run["result"]["fixed"]}
    largest = max(t for _, t in fixed)
    assert fixed[("async", largest)] < fixed[("async", 0)] - 0.2
    assert fixed[("staleness", largest)] > fixed[("async", largest)] + 0.2


def test_on_the_teacher_student_task_too_the_fixed_step_breaks_and_alpha_over_tau_does_not(run):
    mse = {(r["rule"], r["tau"]): np.median(r["test_mse"]) for r in run["result"]["teacher"]}
    largest = max(t for _, t in mse)
    assert mse[("async", largest)] > 10 * mse[("async", 0)]
    assert mse[("staleness", largest)] < 1.0  # better than predicting the mean


@pytest.mark.parametrize("changes, message", [
    ({"workers": [0, 4]}, "greater than 0"),
    ({"taus": [-1, 4]}, "greater than or equal to 0"),
    ({"straggler_p": 2}, "less than or equal to 1"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
