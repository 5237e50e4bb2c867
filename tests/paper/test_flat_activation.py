"""§5: the step link, its smoothing, the forward-only rule, the ranking of the approaches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiment import SCALES, RunContext
from gradfail.experiments.paper import flat_activation

EXPERIMENT = registry.get("flat_activation")


def test_the_code_has_52_breakpoints_and_u_rounds_down():
    assert len(flat_activation.CODE_BREAKPOINTS) == 52  # spec §4.1: not the paper's 56
    breakpoints = torch.tensor([[0.0, 1.0, 2.5]])
    r = torch.tensor([[0.0, 0.99, 1.0, 2.4, 7.0, -3.0]])
    assert flat_activation.step_link(r, breakpoints).tolist() == [[0, 0, 1, 1, 2.5, 0]]
    assert flat_activation.step_class(r, breakpoints).tolist() == [[0, 0, 1, 1, 2, 0]]


def test_the_smoothed_link_follows_u_away_from_the_steps_and_is_flat_there():
    breakpoints = torch.tensor([[0.0, 1.0, 2.0]])
    r = torch.tensor([[0.5, 1.5]], requires_grad=True)
    smooth = flat_activation.smoothed_link(r, breakpoints)
    torch.testing.assert_close(smooth, torch.tensor([[0.0, 1.0]]), atol=1e-6, rtol=0)
    (slope,) = torch.autograd.grad(smooth.sum(), r)
    assert slope.abs().max() < 1e-6  # mid-gap the surrogate's gradient vanishes too


def test_exact_u_gives_no_gradient_and_forward_only_does():
    breakpoints = torch.tensor([[0.0, 1.0, 2.0]])
    r = torch.tensor([[0.3, 1.7]], requires_grad=True)
    assert not flat_activation.step_link(r, breakpoints).requires_grad  # the failure: u' = 0
    passed = r + (flat_activation.step_link(r, breakpoints) - r).detach()
    (straight,) = torch.autograd.grad(passed.sum(), r)
    assert straight.tolist() == [[1.0, 1.0]]


def test_the_forward_only_rule_learns_where_the_exact_link_gives_no_gradient():
    """With u' = 0 the test loss would stay where it started; passed straight through, the
    gradient moves the unit (in a 16-seed run, every seed ended below 0.41 of its start)."""
    config = EXPERIMENT.config("quick", {"forward_steps": 1_500, "eval_every": 500,
                                         "test_samples": 256})
    run = flat_activation.train(config, "forward-only", RunContext(torch.device("cpu"), 0, 2))
    assert run["steps"] == [0, 500, 1_000, 1_500]
    mse = np.asarray(run["test_mse"])  # (seeds, evaluations)
    assert (mse[:, -1] < 0.9 * mse[:, 0]).all()


def test_errors_match_a_loop():
    prediction = torch.tensor([[0.0, 0.5, 1.02, 2.0], [1.0, 1.0, 1.0, 1.0]])
    y = torch.tensor([[0.0, 0.5, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0]])
    found = flat_activation.errors(prediction, y)
    for seed in range(2):
        span = float(y[seed].max() - y[seed].min())
        error = [abs(float(p - t)) / span for p, t in zip(prediction[seed], y[seed], strict=True)]
        assert found["off"][seed] == pytest.approx(np.mean([e > 0.01 for e in error]))
        assert found["relative_rmse"][seed] == pytest.approx(np.sqrt(np.mean(np.square(error))))


def test_forward_only_error_falls_with_steps_on_a_lipschitz_link(cpu_context):
    config = EXPERIMENT.config("quick", {"guarantee_steps": [30, 1_000]})
    measured = flat_activation.guarantee(config, cpu_context)["Lipschitz tanh(L·r)"]
    early, late = np.asarray(measured["average_error"]).T
    assert (late < early).all()
    assert (np.asarray(measured["bound"])[:, 1] < np.asarray(measured["bound"])[:, 0]).all()


@pytest.mark.parametrize("changes, message", [
    ({"breakpoints": [0, 2, 1]}, "strictly increasing"),
    ({"breakpoints": [0, 1, 1]}, "strictly increasing"),
    ({"d": 0}, "greater than 0"),
    ({"lr": 0}, "greater than 0"),
    ({"smoothed_lr": -1}, "greater than 0"),
    ({"epsilon_placement": "keras"}, "unknown ε placement"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)


def test_every_scale_runs_the_papers_tensorflow_adam():
    """ε on the uncorrected √v, as step_learn.py's TensorFlow Adam (spec §0, §4.2)."""
    assert {EXPERIMENT.config(scale).epsilon_placement for scale in SCALES} == {"tf"}


def approaches(name: str, off: list[float], steps: int) -> dict:
    """A constructed result: `name`'s fraction of points off per seed after `steps` steps."""
    return {"approaches": [{"approach": name, "steps": [0, steps], "off": off,
                            "relative_rmse": off}]}


CLAIMS = {claim.id: claim for claim in flat_activation.CLAIMS}


@pytest.mark.parametrize("claim, off, steps, verdict", [
    ("multi-class-5-off", [0.01, 0.02, 0.012], 10_000, "holds"),
    ("multi-class-5-off", [0.2, 0.3, 0.1], 10_000, "fails"),
    ("multi-class-5-off", [0.01, 0.3, 0.02], 10_000, "inconclusive"),  # [min, max]
    ("multi-class-5-off", [0.01, 0.02, 0.012], 1_500, "holds"),  # learned early stays so
    ("multi-class-5-off", [0.2, 0.3, 0.1], 1_500, "not checked"),  # may still learn
    ("forward-only-2-off", [0.2, 0.3, 0.1], 5_000, "fails"),  # its budget is 5,000
    ("end-to-end-10-off", [0.2, 0.3, 0.15], 10_000, "holds"),
    ("end-to-end-10-off", [0.2, 0.3, 0.15], 1_500, "not checked"),
    ("end-to-end-10-off", [0.01, 0.02, 0.05], 1_500, "fails"),
    ("smoothed-gradient-fails", [0.97, 0.99, 1.0], 10_000, "holds"),
    ("smoothed-gradient-fails", [0.97, 0.2, 1.0], 10_000, "inconclusive"),
    ("smoothed-gradient-fails", [0.1, 0.2, 0.15], 1_500, "fails"),
])
def test_the_fraction_off_is_judged_on_the_interval_of_the_median_seed(claim, off, steps,
                                                                        verdict):
    name = claim.rsplit("-", 2)[0] if claim.endswith("-off") else "smoothed"
    found = CLAIMS[claim].evaluate(EXPERIMENT.config("quick"), approaches(name, off, steps))
    assert found["verdict"] == verdict
    assert found["measured"] == pytest.approx(np.median(off))
    assert found["interval"]["method"] == "order-statistic" and found["interval"]["n"] == 3
