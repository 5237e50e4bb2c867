"""The doctor's thresholds (gradfail.doctor.config): the defaults are the constants the benchmark
validated, written out here as their brute-force twin; a threshold moved past a measured value
turns its verdict off, or on; a config reaches the Doctor however it is made; and a bad value is
one line naming the field."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_doctor_rules import Net, data, history, noise
from torch import nn

from gradfail.doctor import Doctor, DoctorConfig, DoctorError, rules, watch
from gradfail.doctor.loggers import defaults
from gradfail.doctor.rules import Context, Finding, Timeline
from gradfail.doctor.window import Window

VALIDATED = {  # the rules' module constants before they were a config, as they were written
    "stale": 0.01, "probabilities": 0.9, "flat": 0.9, "dead": 0.5, "linear": 0.9,
    "overshot": 0.2, "pure": 0.9, "regressed": 0.5, "progressed": 1.5, "saturated": 0.25,
    "input_rms": 20.0, "input_spread": 1e3, "fit": 0.9, "learned": 0.35, "nothing": 0.05,
    "stalled": 0.05, "slow": 0.15, "trend": 3.0, "horizon": 300, "vanishing": 1e-2,
    "exploding": 1e2, "huge": 10.0, "spikes": 10.0, "waves": 2.0, "swing": 0.1,
    "ill_conditioned": 1e4, "at_the_edge": 0.1, "past_the_edge": 1.5, "small_step": 0.02,
    "noise": 0.3, "no_signal": 0.1, "window": 100, "persist": 3}


def names(found: list[dict], optimizer: str = "Adam", **thresholds) -> list[str]:
    return [f.name for f in rules.diagnose(found, Context(optimizer=optimizer),
                                           DoctorConfig(**thresholds))]


def test_the_defaults_are_the_constants_the_benchmark_validated():
    defaults_ = DoctorConfig().model_dump()
    assert defaults_ == VALIDATED
    assert all(type(defaults_[k]) is type(v) for k, v in VALIDATED.items())


def test_every_threshold_says_what_it_means_and_where_it_came_from():
    for name, field in DoctorConfig.model_fields.items():
        assert field.description.endswith(("(a definition)", "benchmark)")), name
    assert "held-out evaluation" in DoctorConfig.model_fields["past_the_edge"].description


def test_a_config_is_frozen_and_survives_json():
    config = DoctorConfig(dead=0.8, persist=5)
    assert DoctorConfig.model_validate_json(config.model_dump_json()) == config
    with pytest.raises(ValueError):
        config.dead = 0.1


# -- a threshold moved past the measured value --------------------------------------------------
def test_a_step_past_the_limit_is_not_too_large_under_a_higher_edge_and_vice_versa():
    flat = 1.0 + noise(300, 0.01)
    unstable = history(flat, lr_lambda_max=6.0, stability_limit=2.0, step_ratio=-0.1,
                       baseline_loss=1.0)  # lr·λ_max 3× the limit
    assert "step too large" in names(unstable, "SGD")
    assert "step too large" not in names(unstable, "SGD", past_the_edge=4.0)
    stable = history(flat, lr_lambda_max=0.5, stability_limit=2.0, step_ratio=0.6,
                     baseline_loss=1.0)  # 0.25× the limit, ρ = 0.6
    assert "step too large" not in names(stable, "SGD")
    assert "step too large" in names(stable, "SGD", past_the_edge=0.2, overshot=0.7)


def test_units_dead_on_60_percent_are_dead_at_one_half_and_not_at_seven_tenths():
    losses = 1.0 + noise(200, 0.01)
    sixty = history(losses, **{"dead/net.act": 0.6, "kind/net.act": 1.0})
    assert "dead units" in names(sixty)
    assert "dead units" not in names(sixty, dead=0.7)
    thirty = history(losses, **{"dead/net.act": 0.3, "kind/net.act": 1.0})
    assert "dead units" not in names(thirty)
    assert "dead units" in names(thirty, dead=0.25)


def test_a_loss_that_gives_back_its_progress_oscillates_unless_it_must_give_back_more():
    steps = np.arange(400)
    falling = np.exp(-steps / 60) + 0.01
    back_up = np.where(steps < 200, falling, falling[199] * np.exp((steps - 199) / 40))
    regression = Window(history(back_up), Context(), DoctorConfig()).regression()  # the share of its (log-)progress it gave back
    assert regression > 0.5  # 1.3: past where it started
    assert "oscillating loss" in names(history(back_up))
    assert "oscillating loss" not in names(history(back_up), regressed=regression + 0.05)


def test_persist_is_how_many_checks_a_finding_must_fire():
    dead = Finding("dead units", 2.0, "evidence")
    for persist, raised in ((3, []), (1, ["dead units"])):
        timeline = Timeline(DoctorConfig(persist=persist))
        timeline.check(0, [dead])
        assert timeline.checks[-1]["raised"] == raised


# -- a config reaches every doctor ----------------------------------------------------------------
def test_a_config_given_to_watch_reaches_its_rules():
    x, y = data()
    verdicts = {}
    for dead in (0.5, 1.0):  # no layer has more than all of its units dead
        torch.manual_seed(0)
        model = Net(F.relu, bias=-30.0)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        with watch(model, optimizer, every=1, check_every=5, live=False,
                   config={"dead": dead}) as dr:
            for _ in range(40):
                optimizer.zero_grad()
                loss = F.mse_loss(model(x), y)
                loss.backward()
                optimizer.step()
                dr.step(loss)
            verdicts[dead] = [v.name for v in dr.diagnose()]
        assert dr.config == DoctorConfig(dead=dead) and dr.timeline.config is dr.config
    assert "dead units" in verdicts[0.5] and "dead units" not in verdicts[1.0]


def test_doctors_made_without_a_config_take_the_one_of_defaults():
    with defaults(config=DoctorConfig(persist=1)):
        assert Doctor(nn.Linear(2, 1)).config.persist == 1
        assert Doctor(nn.Linear(2, 1), config={"persist": 2}).config.persist == 2
    assert Doctor(nn.Linear(2, 1)).config == DoctorConfig()


@pytest.mark.parametrize("framework", ["lightning", "transformers"])
def test_a_trainer_callback_checks_its_config_before_training(framework):
    pytest.importorskip(framework)
    module = __import__(f"gradfail.doctor.{framework}", fromlist=["DoctorCallback"])
    callback = module.DoctorCallback(config={"dead": 0.8}, live=False)
    assert callback.options["config"] == DoctorConfig(dead=0.8)
    with pytest.raises(DoctorError, match="dead=1.5"):
        module.DoctorCallback(config={"dead": 1.5})


# -- bad values -----------------------------------------------------------------------------------
@pytest.mark.parametrize("settings, named", [
    ({"dead": 1.5}, "dead=1.5"), ({"dead": 0.0}, "dead=0.0"), ({"trend": -1.0}, "trend=-1.0"),
    ({"progressed": 1.0}, "progressed=1.0"), ({"swing": math.nan}, "swing=nan"),
    ({"persist": 0}, "persist=0"), ({"persist": 2.5}, "persist=2.5"),
    ({"horizon": 5}, "horizon=5"), ({"noise": "0.3"}, "noise='0.3'"),
    ({"dead": True}, "dead=True"), ({"daed": 0.5}, "'daed' (did you mean 'dead'?)")])
def test_a_bad_value_is_one_line_naming_the_field(settings, named):
    for make in (lambda: DoctorConfig(**settings),
                 lambda: Doctor(nn.Linear(2, 1), config=settings)):
        with pytest.raises(DoctorError) as error:
            make()
        assert named in str(error.value) and "\n" not in str(error.value)


def test_a_config_that_is_not_one_is_named():
    with pytest.raises(DoctorError, match="not 'thresholds.json'"):
        Doctor(nn.Linear(2, 1), config="thresholds.json")
