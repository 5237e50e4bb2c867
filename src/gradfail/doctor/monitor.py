"""The doctor around a user's training loop: hooks on the model, its parameters and its optimizer,
a history of measured quantities per step, and verdicts checked as training goes.

    with gradfail.doctor.watch(model, optimizer, loss_fn) as dr:
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            dr.step(loss, x, y)      # x, y optional: they let curvature use a part of the batch
    dr.report()

What is measured on a step is decided before it begins: on a traced step a `StepTrace`
(gradfail.doctor.trace) watches the model's forward and tapes the loss computation, so
functional activations are seen and, without a loss function, the loss can be evaluated again
(for curvature and the input-independent baseline). Every `check_every` steps the rules
(gradfail.doctor.rules, a pure function of the history) are applied and the `Timeline` keeps
the verdicts that persist, with the step at which each began. A verdict is spoken when it begins
(gradfail.doctor.loggers: a line on stderr, TensorBoard, MLflow, `on_verdict`), and one named in
`abort_on` stops the loop with `DoctorAbort` at the end of that step.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from gradfail.doctor import rules, wrappers
from gradfail.doctor.budget import Budget, space
from gradfail.doctor.config import DoctorConfig
from gradfail.doctor.forward import Activations, Curvature, InputScale, LossInputs, Recurrence
from gradfail.doctor.hooks import StepHooks, held_before
from gradfail.doctor.loggers import DoctorAbort, DoctorError, Speaker, configured, given
from gradfail.doctor.per_sample import GradientCapture
from gradfail.doctor.quantities import (
    GradientAlignment,
    GradientNoise,
    GradientZeros,
    LayerGradients,
    StaleGradients,
    StepQuality,
    StepView,
    as_floats,
    filled,
    squared_norms,
    trainable_layers,
)
from gradfail.doctor.replay import LossReplay
from gradfail.doctor.trace import StepTrace, paused


class Doctor(StepHooks, LossReplay):
    """Watches one model (and optionally its optimizer); `step(loss)` closes a training step.
    `start` numbers the first step; `config` holds the rules' thresholds (a DoctorConfig or a
    dict of its fields, gradfail.doctor.config); `live`, `log_to`, `on_verdict` and `abort_on`
    say where a verdict goes when it begins (gradfail.doctor.loggers.Speaker)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                 loss_fn: Callable | None = None, *, every: int = 10,
                 curvature_every: int | None = 100, check_every: int = 25, name: str = "run",
                 start: int = 0, config: DoctorConfig | dict | None = None, scaler=None,
                 overhead: float | None = None, schedule: dict | None = None, **speaking):
        if not isinstance(model, nn.Module):
            raise DoctorError(f"the doctor watches a torch.nn.Module, not a "
                              f"{type(model).__name__}")
        self.optimizer, self.loss_fn, self.name, self.scaler = optimizer, loss_fn, name, scaler
        self.model, self.wrapped_by = wrappers.unwrap(model)  # DDP's or torch.compile's inside
        self.processes, self.reporting = wrappers.processes(model), wrappers.rank() == 0
        if not self.reporting:  # one doctor speaks for a distributed training: rank 0's
            speaking.update(live=False, log_to=[], on_verdict=None)
        layers = trainable_layers(self.model)
        if not layers:
            raise DoctorError(f"{type(model).__name__} has no parameters that require grad: "
                              "there is no training to watch")
        self.layer_names = list(layers)
        self.speaker = Speaker(name, **speaking)  # live, log_to, on_verdict, abort_on
        self.bare = getattr(model, "tensors", None) is not None and not any(
            True for _ in model.children())  # a model of bare tensors (gradfail.doctor.script)
        self.params = [p for params in layers.values() for p in params]
        self.layer_numbers = [i for i, params in enumerate(layers.values()) for _ in params]
        self.quantities = {q.name: q for q in (
            LayerGradients(every=every), StaleGradients(every=every),
            GradientZeros(every=every),
            GradientAlignment(every=every),
            GradientNoise(every=every), Activations(every=every), InputScale(every=every),
            LossInputs(every=every), Recurrence(every=every), StepQuality(every=every),
            Curvature(every=curvature_every))}
        overhead = given("overhead", overhead)  # or gradfail doctor --overhead's
        self.budget = Budget(overhead) if overhead is not None else None
        self._schedule = dict(schedule or {})
        self._space()
        self.capture = GradientCapture(self.model, hooked=self.wrapped_by != "compiled")
        self.check_every = check_every
        self.kinds: dict = {}  # each activation site's kind, classified once
        self.history: list[dict] = []
        self.failures: dict[str, str] = {}  # quantity -> the first error it raised
        self.config = configured(config)  # given, or the one of loggers.defaults(config=...)
        self.timeline = rules.Timeline(self.config)
        self.step_index = self._start = start  # a trainer's optimizer step where it joins
        self._listening = True
        self._trace: StepTrace | None = None
        self._forward: tuple | None = None  # (args, kwargs, output) of the step's first forward
        self._before: list[torch.Tensor] | None = None  # θ before the step, then −Δθ
        self._step_seen = False
        self._stale: dict[int, torch.Tensor] = {}
        self._stale_hooks: list = []
        self._recurrent: dict[str, tuple] = {}
        self._output_means: collections.deque = collections.deque(maxlen=20)
        self._micro: list = []  # the losses of an accumulated step's earlier micro-batches
        self._judged = None  # the first of them, as the trace taped it
        self._accumulates = True  # False once the optimizer given has not stepped for long
        self._grads: list | None = None  # the gradients the optimizer stepped with
        self._loss_scale = 1.0
        self._optimizer_steps = self._steps_at_call = 0  # optimizer steps, then at dr.step
        self._batch_given = False  # whether the last dr.step had the batch (inputs, targets)
        self._timed = timed = self.budget.timed if self.budget is not None else lambda h: h
        self._handles = [
            *(m.register_forward_hook(timed(self._recurrent_input(name)))
              for name, m in self.model.named_modules() if isinstance(m, nn.RNNBase)
              and self.wrapped_by != "compiled"),
            model.register_forward_pre_hook(timed(self._forward_begins), with_kwargs=True),
            model.register_forward_hook(timed(self._forward_ends), with_kwargs=True)]
        if optimizer is not None:
            self._handles += [optimizer.register_step_pre_hook(timed(self._before_step)),
                              optimizer.register_step_post_hook(timed(self._after_step))]
        self._prepare()

    # -- the schedule ----------------------------------------------------------------------------
    def _space(self) -> None:
        space(self.quantities, self.budget, self._schedule)

    def due(self, name: str) -> bool:
        """Whether a quantity is measured at this step (every `every` steps from the first;
        never with every=None)."""
        return name in self._plan

    def _prepare(self) -> None:
        """Before a step begins: what it measures, and so what its hooks should catch. A step
        that measures nothing costs a loss kept for later and four hook calls."""
        quiet = not self.reporting or self.budget is not None and self.budget.quiet(
            self.step_index)
        self._plan = {name for name, q in self.quantities.items() if not quiet and
                      q.every is not None and self.step_index % q.every == 0}
        replayable = self.loss_fn is not None and self._batch_given  # curvature needs no tape
        self.traced = self.wrapped_by != "compiled" and any(
            self.quantities[name].traced for name in self._plan
            if not (replayable and name == "curvature"))
        self._keep = self.quantities["alignment"].due_next(self.step_index)
        self.capture.active = self.due("gradient_noise")
        self._forward, self._step_seen, self._stale, self._recurrent = None, False, {}, {}
        self._grads, self._loss_scale = None, 1.0
        due = self.due("stale_gradients")  # its hooks stay while it is due step after step
        if due and not self._stale_hooks:
            self._stale_hooks = [p.register_hook(self._timed(self._gradient_arrives(i)))
                                 for i, p in enumerate(self.params)]
        elif not due:
            for handle in self._stale_hooks:
                handle.remove()
            self._stale_hooks = []
        if self.traced and self.bare:  # no forward to hook: trace until the next step
            self._trace = StepTrace(self.kinds)
            self._trace.start(self.model)

    # -- one step --------------------------------------------------------------------------------
    def step(self, loss: torch.Tensor | float, inputs: torch.Tensor | None = None,
             targets: torch.Tensor | None = None, gradients: list | None = None) -> dict:
        """Close the step: record the loss and every quantity that is due; returns the record
        (its loss stays a tensor until the next measured step or check moves it). Only
        optimizer steps are steps: called after a micro-batch that the optimizer has not
        stepped on yet (gradient accumulation), it keeps the loss for the step's mean and
        returns {}; after a step a mixed-precision scaler skipped (non-finite gradients, no
        optimizer step), it forgets the step. `gradients`: those the loss gave, where a trainer
        changed them before its optimizer read them (clipping); the step is read from θ."""
        if isinstance(loss, torch.Tensor) and loss.numel() != 1:
            raise DoctorError(f"the loss must be a scalar; got a tensor of shape "
                              f"{tuple(loss.shape)} (reduce it, e.g. .mean())")
        if self.budget is not None:
            self.budget.began()
        judged = loss  # what the trace taped: the first micro-batch's loss when accumulating
        loss = loss.detach().reshape(()) if isinstance(loss, torch.Tensor) else float(loss)
        if self._no_step(loss, judged):
            return {}
        self._steps_at_call = self._optimizer_steps
        if gradients is not None:
            self._grads = list(gradients)
        if self._micro:
            loss, judged = sum(self._micro, loss) / (len(self._micro) + 1), self._judged
            self._micro, self._judged = [], None
        self._close_trace()
        if not self.reporting:
            return self._follow()
        record = {"step": self.step_index, "loss": loss}
        self.history.append(record)
        self._batch_given = inputs is not None and targets is not None
        if self._plan:
            self._measure(record, judged, inputs, targets)
        elif self._keep:
            with self._guard(self.quantities["alignment"]):
                self.quantities["alignment"].keep(self._gradients(), self._changes(),
                                                  self.step_index)
        if self.step_index % self.check_every == 0 or (
                self._plan and not math.isfinite(record["loss"])):
            self.check()
        self.step_index += 1
        plan = self._plan
        self._prepare()
        if self.budget is not None and self.budget.ended(plan):
            self._space()  # from the next step's plan on
        self._abort_if_named(record["step"])
        return record

    def _follow(self) -> dict:
        """A step on a process other than rank 0: counted, and stopped where rank 0 stops."""
        self.step_index += 1
        self._abort_if_named(self.step_index - 1)
        return {}

    def _abort_if_named(self, step: int) -> None:
        """Raise DoctorAbort for a verdict in `abort_on` that began; in a distributed training
        every process raises it, at the first check step where rank 0 has one to give."""
        if self.processes == 1:
            abort = self.speaker.take_abort()
        elif self.speaker.abort_on and step % self.check_every == 0:
            abort = wrappers.agreed_abort(self.speaker.abort, step, self.params[0].device)
            self.speaker.abort = None if abort else self.speaker.abort
        else:
            abort = None
        if abort is not None:
            raise DoctorAbort(*abort)

    def skip(self) -> None:
        """Forget the step in progress: its optimizer did not take it (a mixed-precision scaler
        found an overflow), so it is no step of the training."""
        self._close_trace()
        self._trace, self._micro, self._judged = None, [], None
        self.capture.clear()
        self._prepare()

    def _measure(self, record: dict, loss, inputs, targets) -> None:
        """Every quantity due at this step, moved off the device in one transfer with the losses
        kept since the last one."""
        view = self._view(loss, inputs, targets)
        measured, raw = [], []
        self._listening = self.capture.active = False
        try:
            with paused():  # the doctor's own calls are no other doctor's step
                for name in self._plan:
                    quantity = self.quantities[name]
                    with self._guard(quantity):
                        raw.append(quantity.measure(view))
                        measured.append(quantity)
            if self._keep:
                with self._guard(self.quantities["alignment"]):
                    self.quantities["alignment"].keep(self._gradients(), self._changes(),
                                                      self.step_index)
        finally:
            self._listening = True
            self.capture.clear()
            self._trace = None
        pending = self._pending_losses()
        moved = as_floats([{i: r["loss"] for i, r in pending}, *raw])
        for i, r in pending:
            r["loss"] = float(moved[0][i])
        for quantity, readings in zip(measured, moved[1:], strict=True):
            with self._guard(quantity):
                record |= quantity.derive(readings, view)
        self.speaker.measured(self.step_index, record)

    def _pending_losses(self) -> list[tuple[int, dict]]:
        """The recent records whose loss is still a tensor."""
        pending = []
        for i in range(len(self.history) - 1, -1, -1):
            if not isinstance(self.history[i]["loss"], torch.Tensor):
                break
            pending.append((i, self.history[i]))
        return pending

    def _flush(self) -> None:
        pending = self._pending_losses()
        if pending:
            values = torch.stack([r["loss"] for _, r in pending]).tolist()
            for (_, record), value in zip(pending, values, strict=True):
                record["loss"] = value

    def _step_gradients(self) -> list[torch.Tensor | None]:
        """The step's gradients: those the optimizer stepped with where they were kept, else
        each parameter's .grad (None where none reached it)."""
        return self._grads or [p.grad for p in self.params]

    def _gradients(self) -> list[torch.Tensor]:
        return filled(self._step_gradients(), self.params)

    def _changes(self) -> list[torch.Tensor] | None:
        """−Δθ of the step just taken, where it was kept."""
        return self._before if self._step_seen else None

    def _view(self, loss, inputs, targets) -> StepView:
        grads = self._step_gradients()
        changes = self._changes()
        squares = squared_norms([g if g is not None else p.new_zeros(()) for g, p in zip(
            grads, self.params, strict=True)] + [p.detach() for p in self.params]
            + (changes or []))
        args, kwargs, output = self._forward or ((), {}, None)
        first = inputs if inputs is not None else next(
            (a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)), None)
        loss_at, baseline = self._loss_closures(loss, inputs, targets, args, kwargs, output)
        return StepView(
            step=self.step_index, model=self.model, params=self.params, grads=grads,
            layer_numbers=self.layer_numbers, layer_names=self.layer_names, squares=squares,
            seen=frozenset(i for i, g in zip(self.layer_numbers, grads, strict=True)
                           if g is not None),
            changes=changes, optimizer=self.optimizer, inputs=first, trace=self._trace,
            capture=self.capture, stale=held_before(self._stale),
            recurrent=dict(self._recurrent), loss_at=loss_at,
            baseline=baseline, processes=self.processes, loss_scale=self._loss_scale)

    @contextmanager
    def _guard(self, quantity) -> Iterator[None]:
        """Never break the user's training loop: a quantity that raises is skipped, and its
        first error kept in `failures` (and stated in the coverage)."""
        try:
            yield
        except Exception as error:
            self.failures.setdefault(quantity.name, f"{type(error).__name__}: {error}")

    # -- verdicts --------------------------------------------------------------------------------
    def context(self) -> rules.Context:
        return rules.Context.of(self.optimizer, self.layer_names)

    def check(self) -> None:
        """Apply the rules to the history now, and keep what persists (a rule that raises is
        recorded among the failures, never raised into the user's loop)."""
        self._flush()
        if self.history:
            try:
                findings = rules.diagnose(self.history, self.context(), self.config)
            except Exception as error:
                self.failures.setdefault("rules", f"{type(error).__name__}: {error}")
                findings = []
            self.timeline.check(self.history[-1]["step"], findings)
            self.speaker.checked(self.history[-1]["step"], self.timeline, len(self.history))

    def diagnose(self) -> list[rules.Verdict]:
        """The verdicts standing now (checked at the last step), most confident first."""
        if self.history and self.timeline.last_step != self.history[-1]["step"]:
            self.check()
        return self.timeline.standing(len(self.history))

    def coverage(self) -> dict:
        return rules.coverage(self.history, self.failures, self.loss_fn is not None,
                              self.quantities["curvature"].every) | {
            "wrapper": wrappers.described(self.wrapped_by, self.processes),
            "every": {name: q.every for name, q in self.quantities.items()},
            "budget": self.budget.document() if self.budget is not None else None}

    def summary(self) -> dict:
        """The doctor's JSON document (gradfail.doctor.output)."""
        from gradfail.doctor.output import document
        return document(self)

    def report(self, store=None, console=None) -> list[rules.Verdict]:
        """Print the verdicts as a table; with a store, keep the session there too."""
        from gradfail.doctor import output
        verdicts = self.diagnose()
        output.print_table(self, verdicts, console)
        if store is not None:
            output.save(store, self)
        return verdicts

    def plot(self, path):
        """Draw the history with each verdict's onset into `path` (gradfail.doctor.timeline)."""
        from gradfail.doctor.timeline import plot
        return plot(self.history, self.diagnose(), path, f"gradfail doctor: {self.name}")

    def close(self) -> None:
        self._close_trace()
        self._flush()
        self.speaker.close(self.summary)  # the last verdicts, to the loggers
        for handle in self._handles + self._stale_hooks:
            handle.remove()
        self.capture.remove()



@contextmanager
def watch(model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
          loss_fn: Callable | None = None, **options) -> Iterator[Doctor]:
    """Watch a training loop: `with watch(model, optimizer, loss_fn) as dr: ... dr.step(loss)`.
    A verdict is printed when it begins (live=False: only in `report()`); `log_to` takes
    "tensorboard:DIR", "mlflow[:URI]" or a list of them, `on_verdict` a function of the verdict,
    `abort_on` verdict names that stop the loop with `DoctorAbort`; `config` sets the rules'
    thresholds (gradfail.doctor.config.DoctorConfig, or a dict of its fields)."""
    options.setdefault("live", True)
    doctor = Doctor(model, optimizer, loss_fn, **options)
    try:
        yield doctor
    finally:
        doctor.close()
