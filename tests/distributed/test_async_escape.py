"""async_escape: a problem with spurious minima, stale SGD against matched noise."""

from __future__ import annotations

import numpy as np
import pytest

from gradfail import registry
from gradfail.errors import ConfigError

EXPERIMENT = registry.get("async_escape")


@pytest.fixture(scope="module")
def result(quick_store):
    (run,) = quick_store.runs(experiment="async_escape")
    return run["result"]


def test_synchronous_sgd_finds_the_global_loss_from_some_starts_but_not_all(result):
    synchronous = np.asarray(result["stale"][0]["loss"], dtype=float)
    reached = synchronous < EXPERIMENT.config("quick").success
    assert 0 < reached.mean() < 1 and np.isfinite(synchronous).all()


def test_a_step_stable_without_delay_diverges_at_the_largest_staleness(result):
    largest = result["stale"][-1]
    assert largest["tau"] == max(EXPERIMENT.config("quick").taus)
    assert not np.isfinite(np.asarray(largest["loss"], dtype=float)).any()
    assert all(m["matches_tau"] != largest["tau"] for m in result["matched"])


@pytest.mark.parametrize("changes, message", [
    ({"units": 1}, "greater than or equal to 2"),
    ({"taus": [-1, 2]}, "greater than or equal to 0"),
    ({"success": 0}, "greater than 0"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
