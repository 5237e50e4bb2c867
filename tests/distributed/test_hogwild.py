"""Hogwild!: lock-free processes on a shared weight vector learn the sparse problem."""

from __future__ import annotations

import pytest

from gradfail.distributed import hogwild
from gradfail.errors import ConfigError


def test_two_lock_free_processes_learn_as_well_as_one():
    problem = hogwild.sparse_problem(20_000, 10_000, 10)
    one, two = (hogwild.hogwild(problem, k, epochs=2) for k in (1, 2))
    assert one["loss"] < 0.6 and abs(two["loss"] - one["loss"]) < 0.01 * one["loss"]


@pytest.mark.parametrize("call, message", [
    (lambda: hogwild.sparse_problem(100, 10, 20), "nonzeros ≤ features"),
    (lambda: hogwild.hogwild(hogwild.sparse_problem(100, 10, 2), 0), "at least 1 process"),
])
def test_bad_input_is_a_one_line_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
