"""three_node: the certified answer is the set-splitting answer; planted data loads."""

from __future__ import annotations

import pytest

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.exact.threshold import three_node, three_node_output
from gradfail.experiments.exact import three_node as three_node_experiment

EXPERIMENT = registry.get("three_node")


def test_the_reduction_agrees_with_brute_force(quick_store):
    (run,) = quick_store.runs(experiment="three_node")
    claim = next(c for c in run["claims"] if c["name"].startswith("a consistent 3-node"))
    assert claim["verdict"] == "holds" and claim["measured"] == 1.0


def test_planted_labels_are_loaded_with_zero_errors(cpu_context):
    config = EXPERIMENT.config("quick")
    x, labels = three_node_experiment.wall_data(config, 30, "planted", cpu_context.generator("t"))
    found = three_node(x, labels, config.box, config.time_limit)
    assert found.certified and found.loss == 0
    assert (three_node_output(found.network, x) == labels).all()


@pytest.mark.parametrize("changes, message", [
    ({"clause_size": 1}, "greater than or equal to 2"),
    ({"points": [10]}, "at least 2"),
    ({"time_limit": -5}, "greater than 0"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
