"""The doctor's measurements on constructed cases whose answer is known, each beside a healthy
twin: activations however written, gradients held over, probabilities given to a log-loss, the
taped loss replayed, the input-independent baseline, recurrence through time."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradfail.doctor import watch
from gradfail.doctor.trace import StepTrace, Tape


class Functional(nn.Module):
    """Activations written as calls inside forward(), not as modules."""

    def __init__(self, activation, bias: float = 0.0, scale: float = 1.0):
        super().__init__()
        self.first, self.second = nn.Linear(8, 32), nn.Linear(32, 1)
        nn.init.constant_(self.first.bias, bias)
        self.activation, self.scale = activation, scale

    def forward(self, x):
        return self.second(self.activation(self.first(x * self.scale)))


def train(model, steps=6, lr=0.01, zero_grad=True, micro_batches=1, loss_fn=None, x=None,
          y=None, **options):
    torch.manual_seed(0)
    x = torch.randn(64, 8) if x is None else x
    y = torch.randn(64, 1) if y is None else y
    loss_fn = loss_fn or F.mse_loss
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    with watch(model, optimizer, every=1, **options) as dr:
        for step in range(steps):
            if zero_grad:
                optimizer.zero_grad()
            losses = []
            for part in range(micro_batches):
                rows = slice(part * 64 // micro_batches, (part + 1) * 64 // micro_batches)
                losses.append(loss_fn(model(x[rows]), y[rows]) / micro_batches)
                losses[-1].backward()
            optimizer.step()
            dr.step(losses[0])  # the first forward's loss: the one the trace taped
    return dr


def last(dr, prefix: str) -> dict[str, float]:
    return {k.removeprefix(prefix): v for k, v in dr.history[-1].items() if k.startswith(prefix)}


def test_functional_relu_units_pushed_off_are_dead_and_live_ones_are_not():
    dead = last(train(Functional(F.relu, bias=-50.0)), "dead/")
    live = last(train(Functional(F.relu)), "dead/")
    assert list(dead) == ["model:relu"] and dead["model:relu"] == 1.0
    assert live["model:relu"] < 0.2


def test_a_smooth_function_saturated_by_large_inputs_counts_its_zero_derivatives():
    torch.manual_seed(0)
    saturated = train(Functional(torch.tanh, scale=1000.0))
    normal = train(Functional(torch.tanh))
    assert last(saturated, "kind/")["model:tanh"] == 2.0  # smooth, not one-sided
    assert last(saturated, "saturated/")["model:tanh"] > 0.9  # zeros counted as saturated
    assert not last(saturated, "dead/")
    assert last(normal, "saturated/")["model:tanh"] < 0.05


def test_a_flat_function_is_seen_on_the_gradient_path_and_a_straight_through_one_is_not():
    flat = train(Functional(torch.round))
    bypassed = train(Functional(lambda z: z + (torch.round(z) - z).detach()))
    assert last(flat, "flat/")["model:round"] == 1.0
    assert "model:round" in last(flat, "act_grad/")  # the gradient reached its output
    assert "model:round" not in last(bypassed, "act_grad/")  # detached: off the path


def test_module_activations_keep_their_module_path_as_name():
    model = nn.Sequential(nn.Linear(8, 16), nn.Sigmoid(), nn.Linear(16, 1))
    assert set(last(train(model), "kind/")) == {"1"}


def test_gradients_never_cleared_are_held_over_and_cleared_ones_are_not():
    never = train(Functional(torch.tanh), zero_grad=False)
    cleared = train(Functional(torch.tanh))
    accumulated = train(Functional(torch.tanh), micro_batches=4)  # on purpose, cleared per step
    assert never.history[-1]["stale_grad_ratio"] > 0.5
    assert cleared.history[-1]["stale_grad_ratio"] == 0.0
    assert accumulated.history[-1]["stale_grad_ratio"] == 0.0


@pytest.mark.parametrize("head, loss_fn, expected", [
    (nn.Softmax(dim=1), F.cross_entropy, 1.0),
    (nn.Identity(), F.cross_entropy, 0.0),
    (nn.Softmax(dim=1), F.nll_loss, 1.0),
    (nn.LogSoftmax(dim=1), F.nll_loss, 0.0),
])
def test_probabilities_given_to_a_log_loss_are_counted(head, loss_fn, expected):
    model = nn.Sequential(nn.Linear(8, 4), head)
    dr = train(model, loss_fn=loss_fn, y=torch.randint(4, (64,)))
    shares = last(dr, "probability_inputs/")
    assert shares[loss_fn.__name__] == expected
    assert 0 <= dr.history[-1]["accuracy"] <= 1


def test_the_taped_loss_replays_on_another_output_and_skips_what_is_not_derived():
    model = nn.Linear(3, 1)
    x, y = torch.randn(10, 3), torch.randn(10)
    trace = StepTrace({})
    trace.start(model)
    out = model(x)
    trace.forward_done(out)
    loss = (out.squeeze(-1) - y).square().mean() + 0.0 * y.sum()
    loss.detach().item()  # a call that makes no tensor is not taped
    trace.close()
    assert isinstance(trace.tape, Tape)
    again = trace.tape.replay(out * 2, loss)
    assert float(again) == pytest.approx(float((2 * out.squeeze(-1) - y).square().mean()))
    assert trace.tape.replay(out, torch.zeros(())) is None  # not computed from the output


def test_curvature_from_the_tape_matches_curvature_from_the_loss_function():
    def run(loss_fn):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))
        x, y = torch.randn(32, 6), torch.randn(32, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        with watch(model, optimizer, loss_fn, every=1, curvature_every=1) as dr:
            optimizer.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            return dr.step(loss, *((x, y) if loss_fn else ()))
    given, taped = run(F.mse_loss), run(None)
    assert taped["lambda_max"] == pytest.approx(given["lambda_max"], rel=1e-4)
    assert taped["lr_lambda_max"] == pytest.approx(0.01 * given["lambda_max"], rel=1e-4)


def test_the_baseline_is_the_loss_of_the_batch_mean_output():
    model = nn.Linear(8, 1)
    x = torch.randn(64, 8)
    y = x @ torch.ones(8, 1)
    dr = train(model, steps=5, x=x, y=y)
    record = dr.history[-1]
    with torch.no_grad():
        out = model(x)  # after the last step: the record's output is from before it
    assert record["baseline_loss"] > record["loss"] > 0
    assert record["baseline_loss"] == pytest.approx(
        float(F.mse_loss(out.mean(0, keepdim=True).expand_as(out), y)), rel=0.2)


@pytest.mark.parametrize("scale, vanishes", [(0.05, True), (1.0, False)])
def test_a_contracting_recurrence_forgets_its_first_input(scale, vanishes):
    class Reader(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(4, 16, batch_first=True)
            self.head = nn.Linear(16, 1)
            with torch.no_grad():
                self.rnn.weight_hh_l0.copy_(scale * torch.linalg.qr(torch.randn(16, 16))[0])

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])
    torch.manual_seed(0)
    dr = train(Reader(), x=torch.randn(64, 30, 4) * 0.1)
    ratio = dr.history[-1]["time_ratio/rnn"]
    assert (ratio < 1e-6) if vanishes else (ratio > 1e-2)


def test_consecutive_gradients_agree_on_a_fixed_batch():
    dr = train(nn.Linear(8, 1), steps=8, lr=1e-4)
    cosines = [r["grad_cosine"] for r in dr.history if "grad_cosine" in r]
    assert cosines and min(cosines) > 0.99
    assert all(math.isfinite(r["update_ratio"]) for r in dr.history if "update_ratio" in r)


@pytest.mark.parametrize("lr, expected", [(1e-5, (0.99, 1.01)), (0.25, (0.45, 0.55))])
def test_the_step_quality_is_one_for_a_tiny_step_and_a_half_at_the_minimum(lr, expected):
    """On a quadratic, f(s) = L(θ + s·Δθ) is exact: a tiny step keeps the loss linear
    (ρ = 1); plain gradient descent with lr = 1/λ lands on the minimum along its direction
    (ρ = ½)."""
    model = nn.Linear(1, 1, bias=False)
    x = torch.ones(64, 1) * math.sqrt(2)  # mean((w·x − y)²) has curvature 2·x² = 4: lr 1/4
    y = torch.zeros(64, 1)
    rho = train(model, steps=3, lr=lr, x=x, y=y)
    ratios = [r["step_ratio"] for r in rho.history if "step_ratio" in r]
    assert ratios and all(expected[0] < ratio < expected[1] for ratio in ratios)


@pytest.mark.parametrize("function, kind", [
    (torch.tanh, "saturating"), (torch.sigmoid, "saturating"), (F.hardtanh, "saturating"),
    (F.softsign, "saturating"), (F.relu6, "saturating"), (F.relu, "one-sided"),
    (F.gelu, "one-sided"), (F.elu, "one-sided"), (F.leaky_relu, "open"), (torch.round, "flat"),
    (torch.sign, "flat")])
def test_an_activation_is_classified_by_where_its_derivative_vanishes(function, kind):
    from gradfail.doctor.trace import classify
    assert classify(function, torch.zeros(64), (), {})[0] == kind


def test_a_unit_active_on_any_recent_sample_is_not_dead_even_in_batches_of_two():
    """Dead means never active: two samples a step cannot show it, four steps of them can."""
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 1))
    x = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    with watch(model, optimizer, every=1) as dr:
        for step in range(8):
            rows = slice(2 * (step % 4), 2 * (step % 4) + 2)  # batches of two samples
            optimizer.zero_grad()
            loss = model(x[rows]).square().mean()
            loss.backward()
            optimizer.step()
            dr.step(loss)
    first, last = dr.history[0]["dead/1"], dr.history[-1]["dead/1"]
    assert last < first and last < 0.2
