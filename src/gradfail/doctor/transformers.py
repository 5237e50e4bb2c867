"""The doctor in a Hugging Face Trainer (transformers >= 4.45, which calls its callbacks before
and after the optimizer step): `Trainer(..., callbacks=[DoctorCallback()])`.

It watches the Trainer's model and optimizer from the first step (gradfail.doctor.monitor).
The loss it judges a step by is the one the model returns (`outputs["loss"]`, as the
Trainer's `compute_loss` takes it) on the step's first micro-batch, so only optimizer steps
are steps and curvature replays the model's own loss. The Trainer's loop (transformers'
`Trainer._inner_training_loop`) clips, calls `on_pre_optimizer_step`, steps, calls
`on_optimizer_step` and only then clears the gradients: the doctor steps in
`on_optimizer_step`, and, as the clipping came first, on a measured step it measures the
gradients kept as backward left them (divided by a mixed-precision loss scale). A step the
scaler skipped is no step. Quantities and verdicts go where the Trainer reports (`report_to`:
TensorBoard into `output_dir/runs/gradfail-doctor`, or TENSORBOARD_LOGGING_DIR's; MLflow into
the run the Trainer started) and to `log_to`. A verdict in `abort_on` sets
`control.should_training_stop`, and the reason is logged. Nothing the doctor does raises into
the training loop: an error is one warning and training goes on.
"""

from __future__ import annotations

import os

import torch

try:
    import transformers
    from transformers import TrainerCallback
except ImportError:
    raise ImportError("gradfail.doctor.transformers needs transformers >= 4.45: pip install "
                      "'gradfail[integrations]'") from None

from gradfail.doctor import loggers
from gradfail.doctor.monitor import Doctor, DoctorAbort

HOOKS = ("on_train_begin", "on_step_begin", "on_pre_optimizer_step", "on_optimizer_step",
         "on_train_end")


class DoctorCallback(TrainerCallback):
    """Watches the Trainer's model and optimizer (one gradfail.doctor.monitor.Doctor, kept in
    `doctor`). `abort_on`: verdict names that stop training; `log_to`: more destinations
    ("tensorboard:DIR", "mlflow[:URI]"); `on_verdict(verdict)`; `live`: a line on stderr when a
    verdict begins; `report`: the table of verdicts on stderr when training ends. Other
    options (every, curvature_every, check_every, config: the thresholds,
    gradfail.doctor.config) go to the Doctor."""

    def __init__(self, *, abort_on=(), log_to=None, on_verdict=None, live: bool = True,
                 report: bool = True, **options):
        self.options, self.log_to = loggers.callback_settings(abort_on, log_to, on_verdict,
                                                              live, options)
        self.report = report
        self.doctor: Doctor | None = None
        self.stopped: DoctorAbort | None = None  # the verdict that stopped training
        self.calm = loggers.Calm()
        self.on = loggers.supported("transformers", transformers.__version__, (4, 45),
                                    (6, 0), TrainerCallback, HOOKS)
        self._loss: torch.Tensor | None = None  # the step's first micro-batch's loss
        self._taken = False  # whether the optimizer's step() ran
        self._kept: list | None = None  # the gradients before clipping, on a measured step
        self._keeping: list = []
        self._handles: list = []

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        self.doctor, self.stopped = None, None
        if not (self.on and state.is_world_process_zero):  # one doctor, on the first process
            return
        with self.calm("the doctor's start"):
            raw = loggers.unwrapped(optimizer)
            self.doctor = Doctor(model, raw, name=type(model).__name__, start=state.global_step,
                                 log_to=[*self.log_to, *reported(args)], **self.options)
            self._handles = [model.register_forward_hook(self._output),
                             raw.register_step_post_hook(self._stepped)]

    def on_step_begin(self, args, state, control, **kwargs):
        if self.doctor is not None and args.max_grad_norm and loggers.measuring(self.doctor):
            with self.calm("keeping the gradients before clipping"):
                self._kept = [None] * len(self.doctor.params)
                self._keeping = [p.register_post_accumulate_grad_hook(self._keep(i))
                                 for i, p in enumerate(self.doctor.params)]

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        for handle in self._keeping:
            handle.remove()
        self._keeping = []
        scaler = getattr(optimizer, "scaler", None)
        if self._kept is not None and scaler is not None and scaler.is_enabled():
            with self.calm("unscaling the kept gradients"):
                scale = float(scaler.get_scale())
                self._kept = [None if g is None else g / scale for g in self._kept]

    def on_optimizer_step(self, args, state, control, **kwargs):
        if self.doctor is None:
            return
        kept, taken, self._kept, self._taken = self._kept, self._taken, None, False
        try:
            with self.calm("the doctor's step"):
                if not taken:
                    self.doctor.skip()
                elif self._loss is None:
                    raise ValueError("the model returned no loss (give it labels, so that "
                                     "outputs['loss'] holds the loss)")
                else:
                    self.doctor.step(self._loss, gradients=kept)
        except DoctorAbort as abort:
            self.stopped = abort
            control.should_training_stop = True
            with self.calm("logging why training stopped"):
                self.doctor.speaker.note("abort", str(abort), abort.step)
            loggers.warn(f"stopping training: {abort}")
        finally:
            self._loss = None  # after the step: the doctor's own forwards are no loss
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.doctor is None:
            return
        if self.report:
            from rich.console import Console
            with self.calm("the doctor's report"):
                self.doctor.report(console=Console(stderr=True))
        with self.calm("closing the doctor"):
            self.doctor.close()
        for handle in self._handles + self._keeping:
            handle.remove()
        self._handles, self._keeping = [], []

    # -- what the hooks catch ------------------------------------------------------------------
    def _output(self, module, args, output) -> None:
        """The loss of the step's first forward with gradients, as compute_loss takes it."""
        if self._loss is None and torch.is_grad_enabled():
            loss = output.get("loss") if isinstance(output, dict) else output[0] if \
                isinstance(output, tuple | list) and output else None
            if isinstance(loss, torch.Tensor) and loss.numel() == 1:
                self._loss = loss

    def _stepped(self, optimizer, args, kwargs) -> None:
        self._taken = True

    def _keep(self, index: int):
        def hook(param: torch.Tensor) -> None:  # the last micro-batch's call holds the sum
            if self._kept is not None:
                self._kept[index] = param.grad.detach().clone()
        return hook


def reported(args) -> list[str]:
    """Where the Trainer reports that the doctor logs too: TensorBoard, MLflow."""
    found = []
    if "tensorboard" in args.report_to:
        runs = os.getenv("TENSORBOARD_LOGGING_DIR") or os.path.join(args.output_dir, "runs")
        found.append(f"tensorboard:{os.path.join(runs, 'gradfail-doctor')}")
    if "mlflow" in args.report_to:
        found.append("mlflow")
    return found
