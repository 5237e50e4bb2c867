"""three_node: the certified answer is the set-splitting answer; planted data loads."""

from __future__ import annotations

import pytest

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.exact.threshold import three_node, three_node_output
from gradfail.experiments.exact import three_node as three_node_experiment

EXPERIMENT = registry.get("three_node")


def test_the_reduction_agrees_with_brute_force(cpu_context):
    config = EXPERIMENT.config("quick")
    cell = three_node_experiment.reduction(config, 5, cpu_context)
    found = three_node_experiment.check_reduction(config, {"splitting": [cell]})
    assert found.verdict == "holds" and found.measured == 1.0


def wall(times: dict[tuple[str, int], list[float]], cut: int = 0) -> dict:
    """A result whose solves took `times` (per seed) by (labelling, N); the first `cut` solves
    of random labels at the largest N hit the limit."""
    largest = max(n for _, n in times)
    return {"wall": [{"labelling": labelling, "points": n, "instances": [
        {"seconds": s, "certified": not (labelling == "random" and n == largest and i < cut)}
        for i, s in enumerate(seconds)]} for (labelling, n), seconds in times.items()]}


@pytest.mark.parametrize("large, planted, cut, verdict", [
    ([30.0, 25.0, 40.0], [0.1, 0.2, 0.1], 0, "holds"),
    ([0.2, 0.3, 0.2], [0.1, 0.2, 0.1], 0, "fails"),  # no wall
    ([0.2, 0.3, 0.2], [0.1, 0.2, 0.1], 1, "not checked"),  # short only with a cut solve
    ([30.0, 0.3, 40.0], [0.1, 0.2, 0.1], 0, "inconclusive"),
])
def test_the_wall_is_judged_on_per_seed_log_ratios(large, planted, cut, verdict):
    config = EXPERIMENT.config("quick")  # points [10, 20, 30]
    result = wall({("random", 10): [0.1, 0.1, 0.1], ("random", 30): large,
                   ("planted", 10): [0.1, 0.1, 0.1], ("planted", 30): planted}, cut)
    assert three_node_experiment.check_wall(config, result).verdict == verdict


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
