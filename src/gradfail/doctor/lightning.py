"""The doctor in a Lightning Trainer (Lightning 2.x): `Trainer(callbacks=[DoctorCallback()])`.

Which module it watches: the modules that run forward during the first optimizer step are
remembered, and each optimizer's doctor watches the largest of them whose trainable parameters
that optimizer trains (the LightningModule itself when `training_step` calls `self(x)`, its
network when it calls `self.net(x)`), from the second optimizer step on (as `gradfail doctor
SCRIPT.py` does, gradfail.doctor.script). Only optimizer steps are steps: with gradient
accumulation the doctor is judged by the first micro-batch's loss (scaled back by the
accumulation), and sees the first micro-batch's forward. The gradients are read in
`on_before_optimizer_step`, which Lightning's precision plugins call after the closure's
backward and the mixed-precision unscale, before `_clip_gradients` (Lightning 2.x,
`plugins/precision`): so the gradient is the loss's own, and the step taken is measured from
the weights. A step the mixed-precision scaler skipped is no step. Quantities and verdicts go
to the Trainer's loggers (TensorBoard: scalars and text; MLflow: metrics and a verdicts
artifact; any other: metrics) and to `log_to`. A verdict in `abort_on` sets
`trainer.should_stop`, and the reason is logged. Nothing the doctor does raises into the
training loop: an error is one warning and training goes on.
"""

from __future__ import annotations

import sys
import weakref

import torch
from torch import nn

try:
    import lightning.pytorch as pl
except ImportError:  # the standalone package
    try:
        import pytorch_lightning as pl
    except ImportError:
        raise ImportError("gradfail.doctor.lightning needs Lightning 2.x: pip install "
                          "'gradfail[integrations]'") from None

from gradfail.doctor import loggers
from gradfail.doctor.monitor import Doctor, DoctorAbort
from gradfail.doctor.script import trained_model

HOOKS = ("on_train_start", "on_before_backward", "on_before_optimizer_step",
         "on_train_batch_end", "on_train_end")
# both Callback classes where both packages are loaded: a Trainer of either accepts the callback
BASES = tuple(dict.fromkeys([pl.Callback, *(
    [sys.modules["pytorch_lightning"].Callback] if "pytorch_lightning" in sys.modules else [])]))


class DoctorCallback(*BASES):
    """Watches the LightningModule and its optimizer(s) (gradfail.doctor.monitor.Doctor, one
    per optimizer). `abort_on`: verdict names that stop training; `log_to`: more destinations
    ("tensorboard:DIR", "mlflow[:URI]"); `on_verdict(verdict)`; `live`: a line on stderr when a
    verdict begins; `report`: the table of verdicts on stderr when training ends. Other
    options (every, curvature_every, check_every, config: the thresholds,
    gradfail.doctor.config) go to each Doctor. `doctors` holds them."""

    def __init__(self, *, abort_on=(), log_to=None, on_verdict=None, live: bool = True,
                 report: bool = True, **options):
        self.options, self.log_to = loggers.callback_settings(abort_on, log_to, on_verdict,
                                                              live, options)
        self.report = report
        self.doctors: dict[int, Doctor] = {}  # id(optimizer) -> its doctor
        self.stopped: DoctorAbort | None = None  # the verdict that stopped training
        self.calm = loggers.Calm()
        self.on = loggers.supported("Lightning", pl.__version__, (2, 0), (3, 0), pl.Callback,
                                    HOOKS)
        self._seen: weakref.WeakSet[nn.Module] = weakref.WeakSet()
        self._remember = None
        self._loss: torch.Tensor | None = None  # the first loss backpropagated since a step
        self._stepped: list[tuple] = []  # (optimizer, loss, unclipped gradients) this batch
        self._taken: set[int] = set()  # optimizers whose step() ran this batch
        self._handles: list = []
        self._sinks: list = []

    # -- Lightning's hooks ---------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        self.on = self.on and trainer.is_global_zero  # one doctor, on the first process
        if not self.on:
            return
        self.doctors, self.stopped = {}, None  # a new fit, new doctors
        with self.calm("the doctor's start"):
            self._sinks = trainer_sinks(trainer)
            self._remember = nn.modules.module.register_module_forward_hook(self._forward)

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        if self.on and self._loss is None and isinstance(loss, torch.Tensor) and \
                loss.numel() == 1:
            accumulated = trainer.accumulate_grad_batches if pl_module.automatic_optimization \
                else 1
            self._loss = loss * accumulated if accumulated > 1 else loss

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if not self.on:
            return
        with self.calm("the doctor before an optimizer step"):
            raw = loggers.unwrapped(optimizer)
            doctor, kept = self.doctors.get(id(raw)), None
            if doctor is not None and trainer.gradient_clip_val and loggers.measuring(doctor):
                kept = [None if p.grad is None else p.grad.detach().clone()
                        for p in doctor.params]
            if id(raw) not in self.doctors and not any(o is raw for o, *_ in self._stepped):
                self._handles.append(raw.register_step_post_hook(
                    lambda opt, args, kwargs: self._taken.add(id(opt))))
            self._stepped.append((raw, self._loss, kept))
            self._loss = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.on or not self._stepped:
            return
        stepped, taken, self._stepped, self._taken = self._stepped, self._taken, [], set()
        for optimizer, loss, kept in stepped:
            doctor = self.doctors.get(id(optimizer))
            if doctor is None:
                with self.calm("the doctor's start"):
                    self._begin(trainer, pl_module, optimizer)
            elif id(optimizer) not in taken:
                with self.calm("the doctor skipping a step"):
                    doctor.skip()
            else:
                self._step(trainer, doctor, loss if loss is not None else
                           (outputs.get("loss") if isinstance(outputs, dict) else outputs), kept)
        if self._remember is not None:
            self._remember.remove()
            self._remember = None

    def on_train_end(self, trainer, pl_module) -> None:
        if self.on and self.report:
            from rich.console import Console
            for doctor in self.doctors.values():
                with self.calm("the doctor's report"):
                    doctor.report(console=Console(stderr=True))
        self.teardown(trainer, pl_module, "fit")

    def teardown(self, trainer, pl_module, stage) -> None:
        for doctor in self.doctors.values():
            with self.calm("closing the doctor"):
                doctor.close()
        for handle in self._handles + ([self._remember] if self._remember else []):
            handle.remove()
        self._handles, self._remember = [], None

    # -- the doctor's part ---------------------------------------------------------------------
    def _forward(self, module, inputs, output) -> None:
        if torch.is_grad_enabled():
            self._seen.add(module)

    def _begin(self, trainer, pl_module, optimizer) -> None:
        """After an optimizer's first step: its doctor, from the next step on (numbered as the
        Trainer's global step where there is one optimizer)."""
        ran = [m for m in pl_module.modules() if m in self._seen]
        model = trained_model(optimizer, ran) or pl_module
        self.doctors[id(optimizer)] = Doctor(
            model, optimizer, name=type(model).__name__,
            start=trainer.global_step if len(trainer.optimizers) == 1 else 1,
            log_to=[*self.log_to, *self._sinks], **self.options)

    def _step(self, trainer, doctor: Doctor, loss, kept) -> None:
        try:
            with self.calm("the doctor's step"):
                if loss is None:
                    raise ValueError("no loss reached backward (with manual optimization, call "
                                     "self.manual_backward(loss))")
                doctor.step(loss, gradients=kept)
        except DoctorAbort as abort:
            self.stopped = abort
            trainer.should_stop = True
            with self.calm("logging why training stopped"):
                doctor.speaker.note("abort", str(abort), abort.step)
            loggers.warn(f"stopping training: {abort}")


def trainer_sinks(trainer) -> list[loggers.Sink]:
    """The Trainer's loggers as the doctor's destinations: a TensorBoard logger's writer, an
    MLflow logger's client and run, any other logger's `log_metrics`."""
    sinks = []
    for logger in trainer.loggers:
        kind = type(logger).__name__
        if kind == "TensorBoardLogger":
            sinks.append(loggers.TensorBoard(writer=logger.experiment))
        elif kind == "MLFlowLogger":
            sinks.append(loggers.MLflow(client=logger.experiment, run_id=logger.run_id))
        else:
            sinks.append(loggers.Metrics(logger.log_metrics, kind))
    return sinks
