"""The overhead budget (gradfail.doctor.budget): the controller on a clock whose costs are known,
the schedule it sets on a real doctor, and bad settings."""

import json

import pytest
import torch
from torch import nn

from conftest import gradfail_cli
from gradfail.doctor import DoctorError, watch
from gradfail.doctor import budget as budget_module
from gradfail.doctor.budget import BASE, WIDEST, Budget


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drive(budget: Budget, clock: Clock, steps: int, training: float, measured_every: int,
          extra: float, doctor: float, bare_doctor: float = 0.0) -> list[bool]:
    """`steps` calls: training takes `training` s (+`extra` on a measured step, whose call
    takes `doctor` s; an unmeasured call takes `bare_doctor`)."""
    replans = []
    for i in range(steps):
        measured = i % measured_every == 0
        clock.now += training + (extra if measured else 0.0)
        budget.began()
        clock.now += doctor if measured else bare_doctor
        replans.append(budget.ended({"layer_gradients"} if measured else set()))
    return replans


def test_the_controller_spaces_by_its_measured_costs(monkeypatch):
    """Training 1 s; the cheap set, measured every other step, adds 0.1 s to the training and
    0.2 s in its call: 0.3 bare steps a measurement, so every 3rd step keeps within 0.1; a fixed
    0.05 s in every call leaves room for every 6th, past the widest spacing; a free measurement
    is taken every step."""
    clock = Clock()
    monkeypatch.setattr(budget_module.time, "perf_counter", clock)
    budget = Budget(0.1, replan_every=20)
    replans = drive(budget, clock, 21, training=1.0, measured_every=2, extra=0.1, doctor=0.2)
    assert replans.index(True) == 20 and replans.count(True) == 1  # the first call: no step
    assert budget.factor == pytest.approx(3.0) and budget.overhead == pytest.approx(0.1)
    assert budget.spacings() == {kind: round(base * 3.0) for kind, base in BASE.items()}
    assert budget.document()["met"] is True
    fixed = Budget(0.1, replan_every=20)
    drive(fixed, clock, 21, training=1.0, measured_every=2, extra=0.1, doctor=0.2,
          bare_doctor=0.05)
    assert fixed.factor == WIDEST and fixed.overhead == pytest.approx(0.05 + 0.3 / WIDEST)
    assert fixed.document()["met"] is False
    free = Budget(0.1, replan_every=20)
    drive(free, clock, 21, training=1.0, measured_every=2, extra=0.0, doctor=0.01)
    assert free.factor == 1.0 and free.overhead == pytest.approx(0.01)


def mlp_run(steps: int = 120, **options):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with watch(model, optimizer, nn.functional.mse_loss, live=False, **options) as dr:
        for step in range(steps):
            x = torch.randn(32, 8, generator=torch.Generator().manual_seed(step))
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), x[:, :1])
            loss.backward()
            optimizer.step()
            dr.step(loss, x, x[:, :1])
    return dr


def test_a_doctor_under_a_budget_applies_the_plan_and_says_what_it_chose():
    dr = mlp_run(steps=250, overhead=0.05)
    chosen = dr.coverage()
    planned = dr.budget.spacings()
    assert chosen["every"]["layer_gradients"] == planned["cheap"]
    assert chosen["every"]["gradient_noise"] == planned["full"]
    assert chosen["every"]["curvature"] == planned["curvature"]
    assert chosen["budget"]["budget"] == 0.05 and chosen["budget"]["overhead"] > 0
    measured = [r["step"] for r in dr.history if "grad_norm" in r]
    late = [step for step in measured if step >= 210]  # after the second plan (near 200)
    assert 1 <= len(late) <= 40 / planned["cheap"] + 1


def test_a_schedule_overrides_a_quantity_and_bad_settings_are_one_line_errors():
    dr = mlp_run(steps=30, schedule={"layer_gradients": 1, "curvature": None})
    assert len([r for r in dr.history if "grad_norm" in r]) == 30
    assert not any("lambda_max" in r for r in dr.history)
    for bad in ({"schedule": {"curvatur": 5}}, {"schedule": {"curvature": 0}},
                {"schedule": {"curvature": 2.5}}, {"overhead": 0}, {"overhead": float("nan")},
                {"overhead": "10%"}):
        with pytest.raises(DoctorError) as raised:
            mlp_run(steps=1, **bad)
        assert "\n" not in str(raised.value)


def test_gradfail_doctor_takes_the_budget_to_every_doctor_of_a_script(tmp_path):
    from test_doctor import SCRIPT

    script = tmp_path / "train.py"
    script.write_text(SCRIPT.replace("range(120)", "range(230)"))
    done = gradfail_cli("doctor", "--json", "--overhead", "0.2", str(script))
    assert done.returncode == 0, done.stderr
    doctor, = json.loads(done.stdout)["doctors"]
    assert doctor["coverage"]["budget"]["budget"] == 0.2
    assert doctor["coverage"]["budget"]["overhead"] >= 0
    bad = gradfail_cli("doctor", "--overhead", "-1", str(script))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_a_pause_between_calls_is_not_the_doctors_cost(monkeypatch):
    """A measured step that follows a long pause (another job, a checkpoint) is no step of the
    training: the overhead measured is the same as without it."""
    clock = Clock()
    monkeypatch.setattr(budget_module.time, "perf_counter", clock)
    steady, paused = Budget(0.1, replan_every=20), Budget(0.1, replan_every=20)
    drive(steady, clock, 23, training=1.0, measured_every=2, extra=0.1, doctor=0.2)
    drive(paused, clock, 12, training=1.0, measured_every=2, extra=0.1, doctor=0.2)
    clock.now += 1000.0  # the pause, before the measured step that follows
    drive(paused, clock, 12, training=1.0, measured_every=2, extra=0.1, doctor=0.2)
    assert paused.overhead == pytest.approx(steady.overhead) == pytest.approx(0.1)


def test_the_doctors_hooks_are_its_cost_not_the_trainings(monkeypatch):
    """A hook that takes 0.3 s of a 1.3 s training step is counted as the doctor's, once: the
    training's own time is 1.0 s, and a hook run inside the call is not counted again."""
    clock = Clock()
    monkeypatch.setattr(budget_module.time, "perf_counter", clock)
    budget = Budget(0.1, replan_every=20)

    def hook():
        clock.now += 0.3
    timed = budget.timed(hook)
    for step in range(21):
        clock.now += 1.0
        timed()  # during the training
        budget.began()
        clock.now += 0.1
        timed()  # during the call (the doctor's own forward): already in the call's time
        budget.ended(set())
    assert float(budget.bare[-1]) == pytest.approx(1.0)
    assert budget.overhead == pytest.approx((0.3 + 0.1 + 0.3) / 1.0)
