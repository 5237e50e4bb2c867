"""The doctor where practitioners train: a verdict spoken when it begins, `abort_on`, TensorBoard
and MLflow read back from what they wrote, and real Lightning and Hugging Face Trainer runs on
tiny models (a deep sigmoid net named "vanishing gradients", a healthy one left alone)."""

from __future__ import annotations

import json
import signal
import warnings

import pytest
import torch
from torch import nn

from gradfail.doctor import DoctorAbort, DoctorError, DoctorWarning, watch

STEPS = 120


def deep_sigmoid() -> nn.Sequential:
    """Eleven sigmoid layers: the gradient reaching the first is ~1e-9 of the last's."""
    return nn.Sequential(nn.Linear(8, 32), nn.Sigmoid(), *[m for _ in range(10) for m in (
        nn.Linear(32, 32), nn.Sigmoid())], nn.Linear(32, 1))


def shallow_relu() -> nn.Sequential:
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 1))


def batches(steps: int, size: int = 64, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(size, 8, generator=generator)
        yield x, x[:, :1].sign()


def train(model: nn.Module, steps: int = STEPS, lr: float = 0.05, **options):
    """A plain loop under `watch`; the doctor after it."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    with watch(model, optimizer, nn.functional.mse_loss, **options) as dr:
        for x, y in batches(steps):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            dr.step(loss, x, y)
    return dr


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def never_flagged(doctor) -> bool:
    """No verdict raised at any check after the first tenth of the run."""
    late = [c for c in doctor.timeline.checks if c["step"] >= len(doctor.history) // 10]
    return bool(late) and not any(c["raised"] for c in late)


# -- live, on_verdict, abort_on ---------------------------------------------------------------
def test_a_verdict_is_one_line_on_stderr_when_it_begins_and_on_verdict_hears_it(capsys):
    heard = []
    dr = train(deep_sigmoid(), on_verdict=heard.append)
    lines = [line for line in capsys.readouterr().err.splitlines() if "gradfail doctor" in line]
    assert len(lines) == 1 and [v.name for v in heard] == ["vanishing gradients"]
    line, verdict = lines[0], heard[0]
    assert f"step {dr.timeline.checks[2]['step']}: vanishing gradients" in line
    assert verdict.evidence in line and f"remedy: {verdict.remedy}" in line
    quiet = train(shallow_relu(), lr=0.01)
    assert never_flagged(quiet) and "gradfail doctor" not in capsys.readouterr().err


def test_abort_on_stops_a_plain_loop_with_an_exception_naming_the_verdict():
    with pytest.raises(DoctorAbort, match="vanishing gradients") as stopped:
        train(deep_sigmoid(), abort_on=["vanishing gradients"], live=False)
    assert stopped.value.verdict.name == "vanishing gradients" and stopped.value.step == 50
    assert "\n" not in str(stopped.value)
    for bad in ({"abort_on": ["vanishing"]}, {"log_to": "wandb:here"}):
        with pytest.raises(DoctorError) as raised:
            train(shallow_relu(), steps=1, **bad)
        assert "\n" not in str(raised.value)


def test_a_step_the_optimizer_skipped_is_forgotten_and_the_next_is_measured_whole():
    """What a trainer does when a mixed-precision scaler skips a step: `skip()` drops its
    forward, trace and captured gradients; the step that follows is measured in full."""
    model = deep_sigmoid()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with watch(model, optimizer, live=False) as dr:
        for i, (x, y) in enumerate(batches(12)):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            if i == 10:  # the doctor's step 10, a measured one: the scaler found an overflow
                dr.skip()
                continue
            optimizer.step()
            record = dr.step(loss)
    assert len(dr.history) == 11 and record["step"] == 10 and not dr.failures
    assert "act_grad/1" in record and "update_ratio" in record and "snr" in record


# -- TensorBoard and MLflow, read back ------------------------------------------------------
def read_events(folder) -> tuple[dict, dict]:
    """({scalar tag: [(step, value)]}, {text tag: [(step, text)]}) of a TensorBoard folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    return ({tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in tags["scalars"]},
            {tag.removesuffix("/text_summary"): [
                (e.step, e.tensor_proto.string_val[0].decode()) for e in events.Tensors(tag)]
             for tag in tags["tensors"]})


def test_tensorboard_gets_the_quantities_as_scalars_and_the_verdicts_as_text(tmp_path):
    dr = train(deep_sigmoid(), log_to=f"tensorboard:{tmp_path / 'tb'}", live=False)
    scalars, texts = read_events(tmp_path / "tb")
    assert [step for step, _ in scalars["doctor/run/grad_norm"]] == list(range(0, STEPS, 10))
    assert scalars["doctor/run/loss"][3][1] == pytest.approx(dr.history[30]["loss"])
    onset = dr.timeline.checks[2]["step"]
    assert scalars["doctor/run/verdict/vanishing gradients"] == [(onset, 1.0)]
    (step, text), = texts["doctor/run/verdicts"]
    assert step == onset and "**vanishing gradients**" in text
    assert dr.diagnose()[0].evidence.split(";")[0] in text
    assert "| vanishing gradients |" in texts["doctor/run/report"][0][1]


def test_mlflow_gets_metrics_and_a_verdicts_artifact(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # the runs' artifacts go beside the database
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    dr = train(deep_sigmoid(), log_to=f"mlflow:{uri}", live=False)
    client = MlflowClient(uri)
    run, = client.search_runs([client.get_experiment_by_name("gradfail-doctor").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    history = client.get_metric_history(run.info.run_id, "doctor/run/grad_norm")
    assert [m.step for m in history] == list(range(0, STEPS, 10))
    onset = dr.timeline.checks[2]["step"]
    verdict, = client.get_metric_history(run.info.run_id, "doctor/run/verdict/vanishing gradients")
    assert verdict.step == onset
    saved = json.loads((tmp_path / client.download_artifacts(
        run.info.run_id, "doctor/run/verdicts.json", str(tmp_path))).read_text())
    assert saved["verdicts"] == dr.summary()["verdicts"]
    assert [(v["name"], v["step"]) for v in saved["began"]] == [("vanishing gradients", onset)]


def test_a_logger_that_cannot_write_is_one_warning_and_the_doctor_goes_on(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dr = train(deep_sigmoid(), live=False, on_verdict=lambda v: 1 / 0,
                   log_to=[f"tensorboard:{blocked / 'tb'}", "mlflow:http://127.0.0.1:9"])
    said = [str(w.message) for w in caught if w.category is DoctorWarning]
    assert len(said) == 3, said  # one per destination, one for the callback
    assert any("tensorboard:" in s for s in said) and any("127.0.0.1:9" in s for s in said)
    assert any("on_verdict failed (ZeroDivisionError" in s for s in said)
    assert dr.diagnose()[0].name == "vanishing gradients"


def test_the_cli_logs_to_tensorboard_and_speaks_when_a_verdict_begins(tmp_path, capsys):
    from gradfail.cli import main

    script = tmp_path / "train.py"
    script.write_text("import torch\nfrom torch import nn\ntorch.manual_seed(0)\n"
                      "model = nn.Sequential(nn.Linear(8, 32), nn.Sigmoid(), *[m for _ in "
                      "range(10) for m in (nn.Linear(32, 32), nn.Sigmoid())], nn.Linear(32, 1))\n"
                      "optimizer = torch.optim.SGD(model.parameters(), lr=0.05)\n"
                      "for step in range(80):\n    x = torch.randn(64, 8)\n"
                      "    optimizer.zero_grad()\n"
                      "    loss = (model(x)[:, 0] - x[:, 0].sign()).square().mean()\n"
                      "    loss.backward()\n    optimizer.step()\n")
    terminate = signal.getsignal(signal.SIGTERM)  # main() sets its own
    try:
        assert main(["doctor", "--log-to", f"tensorboard:{tmp_path / 'tb'}", "--store",
                     str(tmp_path / "s.sqlite"), str(script)]) == 0
        said = capsys.readouterr()
        assert "gradfail doctor [Sequential] step 50: vanishing gradients" in said.err
        scalars, texts = read_events(tmp_path / "tb")
        assert "doctor/Sequential/grad_norm" in scalars and "doctor/Sequential/report" in texts
        assert main(["doctor", "--log-to", "wandb", str(script)]) == 2
        assert capsys.readouterr().err.strip().count("\n") == 0
    finally:
        signal.signal(signal.SIGTERM, terminate)


# -- Lightning ------------------------------------------------------------------------------
def fit_lightning(tmp_path, model: nn.Module, lr: float, steps: int = STEPS, **trainer_options):
    L = pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.loggers import TensorBoardLogger

    from gradfail.doctor.lightning import DoctorCallback

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = model

        def training_step(self, batch, index):
            x, y = batch
            return nn.functional.mse_loss(self.net(x), y)  # not self(x): the net is found

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=lr)

    x, y = map(torch.cat, zip(*batches(40), strict=True))
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64)
    callback = DoctorCallback(abort_on=trainer_options.pop("abort_on", ()), live=False,
                              report=False)
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=TensorBoardLogger(tmp_path),
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[callback], **trainer_options)
    trainer.fit(Module(), data)
    return trainer, callback


def test_lightning_names_vanishing_gradients_through_the_trainers_logger(tmp_path):
    trainer, callback = fit_lightning(tmp_path, deep_sigmoid(), lr=0.05)
    doctor, = callback.doctors.values()
    assert doctor.name == "Sequential" and len(doctor.history) == STEPS - 1  # from step 1
    assert doctor.diagnose()[0].name == "vanishing gradients" and not doctor.failures
    scalars, texts = read_events(trainer.logger.log_dir)
    assert "doctor/Sequential/grad_norm" in scalars
    assert "vanishing gradients" in texts["doctor/Sequential/verdicts"][0][1]
    _, healthy = fit_lightning(tmp_path, shallow_relu(), lr=0.01)
    assert never_flagged(next(iter(healthy.doctors.values())))


def test_lightning_counts_optimizer_steps_reads_gradients_before_clipping_and_stops(tmp_path):
    clip = 1e-4
    trainer, callback = fit_lightning(tmp_path, deep_sigmoid(), lr=0.05, steps=60,
                                      accumulate_grad_batches=2, gradient_clip_val=clip,
                                      precision="bf16-mixed")
    doctor, = callback.doctors.values()
    assert len(doctor.history) == 59 and not doctor.failures  # optimizer steps, not batches
    assert min(r["grad_norm"] for r in doctor.history if "grad_norm" in r) > 100 * clip
    trainer, callback = fit_lightning(tmp_path, deep_sigmoid(), lr=0.05,
                                      abort_on=["vanishing gradients"])
    assert trainer.should_stop and trainer.global_step < STEPS
    assert callback.stopped.verdict.name == "vanishing gradients"
    _, texts = read_events(trainer.logger.log_dir)
    assert "stopped training" in texts["doctor/Sequential/abort"][0][1]


def test_a_lightning_doctor_that_fails_is_one_warning_and_training_goes_on(tmp_path,
                                                                            monkeypatch):
    from gradfail.doctor import lightning
    from gradfail.doctor.monitor import Doctor

    monkeypatch.setattr(Doctor, "step", lambda *args, **kwargs: 1 / 0)
    with pytest.warns(DoctorWarning) as caught:
        trainer, _ = fit_lightning(tmp_path, shallow_relu(), lr=0.01, steps=20)
    said = [w for w in caught if w.category is DoctorWarning]
    assert trainer.global_step == 20 and len(said) == 1 and "ZeroDivisionError" in str(
        said[0].message)
    monkeypatch.setattr(lightning.pl, "__version__", "1.9.5")
    with pytest.warns(DoctorWarning, match=r"supports Lightning >=2.0,<3.0; found 1.9.5"):
        assert not lightning.DoctorCallback().on


# -- Hugging Face -----------------------------------------------------------------------------
class Regression(nn.Module):
    """A model as a Trainer wants it: labels in, {"loss", "logits"} out."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x, labels=None):
        out = self.net(x)
        return {"loss": nn.functional.mse_loss(out, labels), "logits": out}


def train_hf(tmp_path, net: nn.Module, lr: float, steps: int = STEPS, abort_on=(), **arguments):
    pytest.importorskip("transformers")
    from transformers import Trainer, TrainingArguments

    from gradfail.doctor.transformers import DoctorCallback

    x, y = map(torch.cat, zip(*batches(40), strict=True))
    data = [{"x": row, "labels": label} for row, label in zip(x, y, strict=True)]
    callback = DoctorCallback(abort_on=abort_on, live=False, report=False)
    options = dict(output_dir=str(tmp_path / "out"), max_steps=steps, learning_rate=lr,
                   per_device_train_batch_size=64, optim="sgd", lr_scheduler_type="constant",
                   use_cpu=True, save_strategy="no", logging_strategy="no", report_to=[],
                   disable_tqdm=True, max_grad_norm=0.0, seed=0) | arguments
    trainer = Trainer(model=Regression(net), args=TrainingArguments(**options),
                      train_dataset=data, callbacks=[callback])
    trainer.train()
    return trainer, callback


def test_transformers_names_vanishing_gradients_and_reports_where_the_trainer_does(tmp_path):
    trainer, callback = train_hf(tmp_path, deep_sigmoid(), lr=0.05, report_to=["tensorboard"])
    doctor = callback.doctor
    assert len(doctor.history) == STEPS and not doctor.failures
    assert doctor.diagnose()[0].name == "vanishing gradients"
    assert doctor.coverage()["curvature"].startswith("measured")  # the model's loss, replayed
    scalars, texts = read_events(tmp_path / "out" / "runs" / "gradfail-doctor")
    assert "doctor/Regression/grad_norm" in scalars and "doctor/Regression/verdicts" in texts
    _, healthy = train_hf(tmp_path, shallow_relu(), lr=0.01)
    assert never_flagged(healthy.doctor)


def test_transformers_counts_optimizer_steps_reads_gradients_before_clipping_and_stops(tmp_path):
    clip = 1e-4
    _, callback = train_hf(tmp_path, deep_sigmoid(), lr=0.05, steps=60,
                           gradient_accumulation_steps=2, max_grad_norm=clip, bf16=True)
    assert len(callback.doctor.history) == 60 and not callback.doctor.failures
    norms = [r["grad_norm"] for r in callback.doctor.history if "grad_norm" in r]
    assert len(norms) == 6 and min(norms) > 100 * clip
    trainer, callback = train_hf(tmp_path, deep_sigmoid(), lr=0.05,
                                 abort_on=["vanishing gradients"])
    assert trainer.state.global_step < STEPS and trainer.control.should_training_stop
    assert callback.stopped.verdict.name == "vanishing gradients"


def test_a_transformers_trainer_without_the_hooks_gets_one_line_naming_the_versions(monkeypatch):
    transformers = pytest.importorskip("transformers")

    from gradfail.doctor.transformers import DoctorCallback

    monkeypatch.delattr(transformers.TrainerCallback, "on_pre_optimizer_step")
    with pytest.warns(DoctorWarning) as caught:
        assert not DoctorCallback().on
    said, = [str(w.message) for w in caught]
    assert "transformers >=4.45,<6.0" in said and "without on_pre_optimizer_step" in said
    assert "\n" not in said

