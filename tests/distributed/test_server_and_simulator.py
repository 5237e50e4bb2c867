"""The parameter-server core and its simulator: exact, reproducible, and measured staleness."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail.distributed.server import ServerLogic
from gradfail.distributed.simulator import (
    Delays,
    simulate_async,
    simulate_fixed_delay,
    simulate_sync,
)
from gradfail.errors import ConfigError


def quadratic_gradient(seed: int = 0):
    """A noisy quadratic's gradient; the noise drawn in call order, so runs repeat."""
    generator = torch.Generator().manual_seed(seed)

    def gradient(params, worker, seq):
        return params * torch.linspace(0.5, 2.0, params.shape[1]) + 0.1 * torch.randn(
            params.shape, generator=generator)
    return gradient


START = torch.ones(2, 5)


def test_one_async_worker_is_plain_sgd_bit_for_bit():
    simulated = simulate_async(ServerLogic(START, "async", 0.1), quadratic_gradient(),
                                  1, 50, Delays(), np.random.default_rng(0))
    params, gradient = START, quadratic_gradient()
    for step in range(50):
        params = params - 0.1 * gradient(params, 0, step)
    assert torch.equal(simulated.server.params, params)
    assert set(simulated.server.staleness) == {0}


def test_equal_workers_without_jitter_have_staleness_n_minus_1():
    result = simulate_async(ServerLogic(START, "async", 0.01), quadratic_gradient(), 4,
                               40, Delays(jitter=0.0), np.random.default_rng(0))
    assert result.server.staleness[:4] == [0, 1, 2, 3]  # all read version 0 at once
    assert set(result.server.staleness[4:]) == {3}


def test_a_fixed_delay_is_the_staleness_logged():
    result = simulate_fixed_delay(ServerLogic(START, "async", 0.01, history=8),
                                     quadratic_gradient(), 5, 20)
    assert result.server.staleness == [min(t, 5) for t in range(20)]


def test_delay_compensation_with_lambda_0_is_plain_async():
    runs = [simulate_async(ServerLogic(START, rule, 0.05, dc_lambda=0.0),
                              quadratic_gradient(), 3, 30, Delays("heterogeneous"),
                              np.random.default_rng(1)).server.params for rule in ("async", "dc")]
    assert torch.equal(*runs)


def test_adaptive_delay_compensation_with_lambda0_0_is_plain_async():
    runs = [simulate_async(ServerLogic(START, rule, 0.05, dc_lambda=0.0),
                           quadratic_gradient(), 3, 30, Delays("heterogeneous"),
                           np.random.default_rng(1)).server.params for rule in ("async", "dc-a")]
    assert torch.equal(*runs)


def test_adaptive_delay_compensation_matches_its_formula_step_by_step():
    """DC-ASGD-a (Zheng et al. 2017): ms ← m·ms + (1 − m)·g², w ← w − η(g + λ₀/√(ms + ε)·g²·
    (w − w_read)), against a loop written out by hand."""
    server = ServerLogic(START, "dc-a", 0.1, dc_lambda=2.0, dc_momentum=0.9, history=8)
    generator = torch.Generator().manual_seed(0)
    history, squares = [START], torch.zeros_like(START)
    for step in range(6):
        read = max(0, step - 2)
        gradient = torch.randn(START.shape, generator=generator)
        server.apply([(gradient, read)])
        squares = 0.9 * squares + 0.1 * gradient**2
        drift = history[-1] - history[read]
        history.append(history[-1] - 0.1 * (gradient + 2.0 / (squares + 1e-8).sqrt()
                                              * gradient**2 * drift))
        torch.testing.assert_close(server.params, history[-1])


def test_the_simulator_repeats_bit_for_bit():
    runs = [simulate_async(ServerLogic(START, "staleness", 0.05), quadratic_gradient(),
                              4, 30, Delays("straggler", straggler_p=0.3),
                              np.random.default_rng(2)) for _ in range(2)]
    assert torch.equal(runs[0].server.params, runs[1].server.params)
    assert runs[0].server.staleness == runs[1].server.staleness


def test_backup_workers_drop_the_slowest_and_shorten_the_step():
    delays = Delays("straggler", straggler_p=0.2, straggler_k=10.0)
    plain, backed = (simulate_sync(ServerLogic(START, "async", 0.05), quadratic_gradient(),
                                      8, b, 20, delays, np.random.default_rng(3))
                     for b in (0, 2))
    assert backed.dropped == 2 * 20 and plain.dropped == 0
    assert set(backed.server.staleness) == {0}
    assert np.mean(backed.step_times) < np.mean(plain.step_times)


def test_n_softsync_averages_c_gradients_a_step():
    result = simulate_async(ServerLogic(START, "async", 0.05), quadratic_gradient(), 4,
                               10, Delays(), np.random.default_rng(4), per_update=2)
    assert result.gradients == 20 and len(result.server.staleness) == 20


@pytest.mark.parametrize("call, message", [
    (lambda: simulate_async(ServerLogic(START, "async", 0.1), quadratic_gradient(), 0, 5,
                               Delays(), np.random.default_rng(0)), "at least 1"),
    (lambda: ServerLogic(START, "hogwash", 0.1), "unknown update rule 'hogwash'"),
    (lambda: Delays(jitter=-0.5), "non-negative"),
    (lambda: Delays("lognormal"), "unknown delay model"),
    (lambda: simulate_fixed_delay(ServerLogic(START, "async", 0.1), quadratic_gradient(),
                                     -2, 5), "non-negative"),
    (lambda: simulate_sync(ServerLogic(START, "async", 0.1), quadratic_gradient(), 4, -1,
                              5, Delays(), np.random.default_rng(0)), "non-negative"),
])
def test_bad_input_is_a_one_line_error(call, message):
    with pytest.raises(ConfigError, match=message) as raised:
        call()
    assert "\n" not in str(raised.value)


def test_a_scripted_worker_failure_drops_exactly_one_gradient():
    runs = [simulate_async(ServerLogic(START, "async", 0.05), quadratic_gradient(), 3, 30,
                              Delays(), np.random.default_rng(5), failures=failures)
            for failures in (frozenset(), frozenset({7}))]
    assert runs[0].dropped == 0 and runs[1].dropped == 1
    assert runs[1].server.version == 30 and runs[1].gradients == runs[0].gradients
