"""The doctor's rules: each verdict on a case that shows its mechanism, beside a healthy twin.

Mechanisms a model shows within a few dozen steps are trained here through `watch` (functional
ReLUs pushed off, a saturated tanh, a rounding link, gradients never cleared, a softmax given to
cross-entropy, raw-scale inputs, a loss that overflows); the verdicts about rates, which need a
full window of steps, are judged on constructed histories whose answer is known, since the
rules are a pure function of the history (gradfail.doctor.rules.diagnose)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradfail.doctor import rules, watch
from gradfail.doctor.rules import Context, Finding, Timeline


def names(history: list[dict], optimizer: str = "Adam") -> list[str]:
    return [f.name for f in rules.diagnose(history, Context(optimizer=optimizer))]


def trained(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn=F.mse_loss,
            steps: int = 80, lr: float = 0.01, clear: bool = True) -> list[str]:
    """Train under the doctor, every quantity every step; the verdicts standing at the end."""
    torch.manual_seed(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    with watch(model, optimizer, every=1, check_every=5) as dr:
        for _ in range(steps):
            if clear:
                optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            dr.step(loss)
        return [v.name for v in dr.diagnose()]


class Net(nn.Module):
    """Two layers with an activation written as a call in forward()."""

    def __init__(self, activation, width: int = 32, bias: float = 0.0):
        super().__init__()
        self.first, self.second = nn.Linear(8, width), nn.Linear(width, 1)
        nn.init.constant_(self.first.bias, bias)
        self.activation = activation

    def forward(self, x):
        return self.second(self.activation(self.first(x)))


def data(scale: float = 1.0, n: int = 128):
    x = torch.randn(n, 8, generator=torch.Generator().manual_seed(1))
    return x * scale, (x[:, :1] > 0).float()


# -- mechanisms on minimal models -----------------------------------------------------------------
def test_relu_units_pushed_off_are_dead_and_live_ones_are_not():
    assert "dead units" in trained(Net(F.relu, bias=-30.0), *data())
    assert "dead units" not in trained(Net(F.relu), *data())


def test_a_tanh_whose_inputs_sit_in_its_tails_is_saturated_and_a_scaled_one_is_not():
    big = Net(torch.tanh)
    nn.init.normal_(big.first.weight, std=8.0)
    assert "saturated activations" in trained(big, *data())
    assert "saturated activations" not in trained(Net(torch.tanh), *data())


def test_an_output_link_is_not_a_saturated_hidden_unit():
    confident = nn.Sequential(nn.Linear(8, 1), nn.Sigmoid())
    nn.init.normal_(confident[0].weight, std=20.0)
    assert "saturated activations" not in trained(confident, *data(), loss_fn=F.binary_cross_entropy)


def test_a_rounding_link_above_layers_with_no_gradient_is_flat_and_a_straight_through_one_is_not():
    assert "flat activations" in trained(Net(torch.round), *data())
    straight_through = Net(lambda z: z + (torch.round(z) - z).detach())
    assert "flat activations" not in trained(straight_through, *data())


def test_gradients_never_cleared_accumulate_and_cleared_ones_do_not():
    assert trained(Net(torch.tanh), *data(), clear=False, lr=1e-3)[0] == "gradients accumulate"
    assert "gradients accumulate" not in trained(Net(torch.tanh), *data(), lr=1e-3)


def test_a_softmax_given_to_cross_entropy_is_named_and_logits_are_not():
    x, y = data()
    labels = y.squeeze(-1).long()
    softmax = nn.Sequential(nn.Linear(8, 2), nn.Softmax(dim=1))
    assert trained(softmax, x, labels, F.cross_entropy)[0] == "probabilities fed to a log-loss"
    assert "probabilities fed to a log-loss" not in trained(nn.Linear(8, 2), x, labels,
                                                            F.cross_entropy)


def test_raw_scale_inputs_are_unnormalised_and_standardised_ones_are_not():
    assert trained(Net(torch.tanh), *data(scale=500.0))[0] == "unnormalised inputs"
    assert "unnormalised inputs" not in trained(Net(torch.tanh), *data())


def test_a_loss_that_overflows_diverged_at_its_first_non_finite_step():
    torch.manual_seed(0)
    model = nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = data()
    with watch(model, optimizer, every=1, check_every=5) as dr:
        for step in range(30):
            optimizer.zero_grad()
            loss = F.mse_loss(model(x), y) * (1e39 if step >= 12 else 1.0)  # overflows
            loss.backward()
            optimizer.step()
            dr.step(loss)
        found = dr.diagnose()[0]
    assert found.name == "diverged" and found.onset_step == 12
    assert "became non-finite at step 12" in found.evidence


# -- verdicts about rates, on constructed histories ------------------------------------------------
def history(losses, **columns) -> list[dict]:
    """A history with these losses; each column a constant or a function of the step."""
    records = []
    for step, loss in enumerate(losses):
        record = {"step": step, "loss": float(loss)}
        if step % 10 == 0:
            for key, value in columns.items():
                record[key] = value(step) if callable(value) else value
        records.append(record)
    return records


def noise(n: int, scale: float, seed: int = 0) -> np.ndarray:
    return scale * np.random.default_rng(seed).standard_normal(n)


def test_a_step_past_the_stability_limit_is_too_large_and_one_below_it_is_not():
    flat = 1.0 + noise(300, 0.01)
    unstable = history(flat, lr_lambda_max=6.0, stability_limit=2.0, step_ratio=-0.1,
                       baseline_loss=1.0)
    stable = history(flat, lr_lambda_max=0.5, stability_limit=2.0, step_ratio=0.6,
                     baseline_loss=1.0)
    assert names(unstable, "SGD") == ["step too large"]
    assert "step too large" not in names(stable, "SGD")


def test_a_loss_that_gives_back_its_progress_oscillates_and_a_falling_one_does_not():
    steps = np.arange(400)
    falling = np.exp(-steps / 60) + 0.01
    back_up = np.where(steps < 200, falling, falling[199] * np.exp((steps - 199) / 40))
    assert "oscillating loss" in names(history(back_up))
    assert "oscillating loss" not in names(history(falling))


def test_a_crawl_at_the_stability_edge_is_ill_conditioned_and_one_with_room_is_a_small_step():
    crawl = 1.0 - 0.0005 * np.arange(400) + noise(400, 1e-4)
    edge = dict(lr_lambda_max=1.2, stability_limit=2.0, lambda_min=1e-5, lambda_max=1.0,
                step_ratio=0.999, grad_cosine=lambda s: 0.9 + 0.01 * (s % 3),
                baseline_loss=1.0, update_ratio=1e-5)
    assert names(history(crawl, **edge), "SGD") == ["ill-conditioned"]
    room = edge | {"lr_lambda_max": 0.002}
    assert names(history(crawl, **room), "SGD") == ["learning rate too small"]
    assert names(history(1.0 / (1 + np.arange(400) / 20), **room), "SGD") == []  # fast


def test_a_schedule_warming_up_is_not_a_learning_rate_too_small():
    crawl = 1.0 - 0.0005 * np.arange(400)
    columns = dict(step_ratio=0.999, grad_cosine=lambda s: 0.5 + 0.01 * (s % 3),
                   baseline_loss=1.0, update_ratio=1e-5)
    assert names(history(crawl, **columns, lr=1e-5)) == ["learning rate too small"]
    assert names(history(crawl, **columns, lr=lambda s: 1e-5 * (1 + s))) == []


def test_noise_at_the_baseline_is_no_signal_and_noise_with_learning_is_low_snr():
    cosines = lambda s: 0.05 * math.sin(s)  # noqa: E731 (uncorrelated gradients)
    at_chance = history(0.69 + noise(300, 0.005), grad_cosine=cosines, baseline_loss=0.69)
    assert names(at_chance) == ["no gradient signal"]
    learning = history(0.55 + noise(300, 0.1), grad_cosine=lambda s: 0.15 + 0.05 *
                       math.sin(s), baseline_loss=0.69)
    assert names(learning) == ["low SNR"]
    fitted = history(0.05 + noise(300, 0.01), grad_cosine=cosines, baseline_loss=0.69)
    assert names(fitted) == []  # converged: noise around a good fit is health


# -- the timeline -----------------------------------------------------------------------------------
def test_a_finding_is_raised_after_three_checks_with_its_onset_and_dropped_after_three_misses():
    timeline = Timeline()
    dead = Finding("dead units", 2.0, "evidence")
    for step, firing in zip(range(0, 100, 10), [1, 0, 1, 1, 1, 1, 0, 0, 0, 0]):
        timeline.check(step, [dead] if firing else [])
        if step == 30:
            assert timeline.standing(step)[0].name == "healthy"  # two checks: not yet
        if step == 40:
            assert timeline.standing(step)[0].onset_step == 20
    assert [c["raised"] for c in timeline.checks][4:9] == [["dead units"]] * 4 + [[]]
    assert timeline.standing(100)[0].name == "healthy"


def test_a_divergence_is_raised_at_once():
    timeline = Timeline()
    timeline.check(7, [Finding("diverged", math.inf, "the loss became non-finite")])
    assert timeline.standing(8)[0].name == "diverged"
    assert timeline.standing(8)[0].onset_step == 7


@pytest.mark.parametrize("verdict", rules.VERDICTS)
def test_every_verdict_has_a_remedy(verdict):
    assert rules.REMEDIES[verdict]


def test_batches_of_one_class_in_turn_are_ordered_data_and_mixed_batches_are_not():
    losses = 1.0 + noise(200, 0.05)
    ordered = history(losses, batch_purity=1.0, batch_class=lambda s: float(s // 50 % 4))
    mixed = history(losses, batch_purity=0.3, batch_class=lambda s: float(s // 50 % 4))
    always_one = history(losses, batch_purity=0.95, batch_class=0.0)  # imbalanced, not ordered
    assert names(ordered) == ["oscillating loss"]
    assert "oscillating loss" not in names(mixed) + names(always_one)


def test_a_model_of_bare_tensors_is_watched_from_the_command_line(tmp_path):
    from gradfail.doctor.script import run_script

    script = tmp_path / "bare.py"
    script.write_text(
        "import torch, torch.nn.functional as F\n"
        "torch.manual_seed(0)\n"
        "w = (torch.randn(2, 64) * 0.5).requires_grad_()\n"
        "b = torch.full((64,), -30.0, requires_grad=True)  # every unit pushed off\n"
        "v = (torch.randn(64, 1) * 0.1).requires_grad_()\n"
        "optimizer = torch.optim.Adam([w, b, v], lr=1e-3)\n"
        "for step in range(120):\n"
        "    x = torch.randn(64, 2)\n"
        "    loss = F.mse_loss(F.relu(x @ w + b) @ v, x[:, :1] * x[:, 1:])\n"
        "    optimizer.zero_grad(); loss.backward(); optimizer.step()\n")
    (doctor,), _ = run_script(str(script), [])
    assert doctor.name == "BareTensors"
    assert doctor.diagnose()[0].name == "dead units"
