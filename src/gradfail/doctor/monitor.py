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
from torch.utils._pytree import tree_flatten, tree_map

from gradfail.doctor import rules
from gradfail.doctor.forward import Activations, Curvature, InputScale, LossInputs, Recurrence
from gradfail.doctor.loggers import DoctorAbort, DoctorError, Speaker
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
    squared_norms,
    trainable_layers,
)
from gradfail.doctor.trace import StepTrace, batch_size, paused


class Doctor:
    """Watches one model (and optionally its optimizer); `step(loss)` closes a training step.
    `start` numbers the first step; `live`, `log_to`, `on_verdict` and `abort_on` say where a
    verdict goes when it begins (gradfail.doctor.loggers.Speaker)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                 loss_fn: Callable | None = None, *, every: int = 10,
                 curvature_every: int | None = 100, check_every: int = 25, name: str = "run",
                 start: int = 0, **speaking):
        if not isinstance(model, nn.Module):
            raise DoctorError(f"the doctor watches a torch.nn.Module, not a "
                              f"{type(model).__name__}")
        self.model, self.optimizer, self.loss_fn, self.name = model, optimizer, loss_fn, name
        layers = trainable_layers(model)
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
        self.capture = GradientCapture(model)
        self.check_every = check_every
        self.kinds: dict = {}  # each activation site's kind, classified once
        self.history: list[dict] = []
        self.failures: dict[str, str] = {}  # quantity -> the first error it raised
        self.timeline = rules.Timeline()
        self.step_index = start  # a trainer's optimizer step at which the doctor joins
        self._listening = True
        self._trace: StepTrace | None = None
        self._forward: tuple | None = None  # (args, kwargs, output) of the step's first forward
        self._before: list[torch.Tensor] | None = None  # θ before the step, then −Δθ
        self._step_seen = False
        self._stale: dict[int, torch.Tensor] = {}
        self._stale_hooks: list = []
        self._recurrent: dict[str, tuple] = {}
        self._output_means: collections.deque = collections.deque(maxlen=20)
        self._handles = [
            *(m.register_forward_hook(self._recurrent_input(name))
              for name, m in model.named_modules() if isinstance(m, nn.RNNBase)),
            model.register_forward_pre_hook(self._forward_begins, with_kwargs=True),
            model.register_forward_hook(self._forward_ends, with_kwargs=True)]
        if optimizer is not None:
            self._handles += [optimizer.register_step_pre_hook(self._before_step),
                              optimizer.register_step_post_hook(self._after_step)]
        self._prepare()

    # -- the schedule ----------------------------------------------------------------------------
    def due(self, name: str) -> bool:
        """Whether a quantity is measured at this step (every `every` steps from the first;
        never with every=None)."""
        return name in self._plan

    def _prepare(self) -> None:
        """Before a step begins: what it measures, and so what its hooks should catch. A step
        that measures nothing costs a loss kept for later and four hook calls."""
        self._plan = {name for name, q in self.quantities.items()
                      if q.every is not None and self.step_index % q.every == 0}
        self.traced = any(self.quantities[name].traced for name in self._plan)
        self._keep = self.quantities["alignment"].due_next(self.step_index)
        self.capture.active = self.due("gradient_noise")
        self._forward, self._step_seen, self._stale, self._recurrent = None, False, {}, {}
        for handle in self._stale_hooks:
            handle.remove()
        self._stale_hooks = [p.register_hook(self._gradient_arrives(i))
                             for i, p in enumerate(self.params)] if self.due(
            "stale_gradients") else []
        if self.traced and self.bare:  # no forward to hook: trace until the next step
            self._trace = StepTrace(self.kinds)
            self._trace.start(self.model)

    # -- what the hooks catch --------------------------------------------------------------------
    def _forward_begins(self, module, args, kwargs) -> None:
        if self._listening and self._forward is None and torch.is_grad_enabled():
            self._forward = (args, kwargs, None)
            if self.traced:
                self._trace = StepTrace(self.kinds)
                self._trace.start(self.model)

    def _forward_ends(self, module, args, kwargs, output) -> None:
        if self._forward is not None and self._forward[2] is None and self._forward[0] is args:
            self._forward = (args, kwargs, output)
            if self._trace is not None:
                self._trace.forward_done(output)

    def _recurrent_input(self, name: str) -> Callable:
        def hook(module, args, output) -> None:
            if self._listening and self._trace is not None and name not in self._recurrent \
                    and args and isinstance(args[0], torch.Tensor):
                self._recurrent[name] = (module, args[0].detach())
        return hook

    def _gradient_arrives(self, index: int) -> Callable:
        def hook(grad: torch.Tensor) -> None:
            if self._listening and index not in self._stale:
                held = self.params[index].grad
                self._stale[index] = (held.detach().square().sum() if held is not None
                                      else grad.new_zeros(()))
        return hook

    def _close_trace(self) -> None:
        if self._trace is not None:
            self._trace.close()

    def _before_step(self, optimizer, args, kwargs) -> None:
        self._close_trace()
        if self._listening and (self.due("alignment") or self._keep):
            weights = [p.detach() for p in self.params]
            if self._before is None:
                self._before = [w.clone() for w in weights]
            else:  # into the same buffers every time: fresh ones cost page faults on a CPU
                torch._foreach_copy_(self._before, weights)

    def _after_step(self, optimizer, args, kwargs) -> None:
        if self._listening and self._before is not None and (self.due("alignment")
                                                              or self._keep):
            torch._foreach_sub_(self._before, [p.detach() for p in self.params])
            self._step_seen = True

    # -- one step --------------------------------------------------------------------------------
    def step(self, loss: torch.Tensor | float, inputs: torch.Tensor | None = None,
             targets: torch.Tensor | None = None) -> dict:
        """Close the step: record the loss and every quantity that is due; returns the record
        (its loss stays a tensor until the next measured step or check moves it)."""
        if isinstance(loss, torch.Tensor) and loss.numel() != 1:
            raise DoctorError(f"the loss must be a scalar; got a tensor of shape "
                              f"{tuple(loss.shape)} (reduce it, e.g. .mean())")
        self._close_trace()
        record = {"step": self.step_index, "loss": loss.detach().reshape(())
                  if isinstance(loss, torch.Tensor) else float(loss)}
        self.history.append(record)
        if self._plan:
            self._measure(record, loss, inputs, targets)
        elif self._keep:
            with self._guard(self.quantities["alignment"]):
                self.quantities["alignment"].keep(self._gradients(), self._changes(),
                                                  self.step_index)
        if self.step_index % self.check_every == 0 or (
                self._plan and not math.isfinite(record["loss"])):
            self.check()
        self.step_index += 1
        self._prepare()
        if (abort := self.speaker.take_abort()) is not None:
            raise DoctorAbort(*abort)
        return record

    def skip(self) -> None:
        """Forget the step in progress: its optimizer did not take it (a mixed-precision scaler
        found an overflow), so it is no step of the training."""
        self._close_trace()
        self._trace = None
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

    def _gradients(self) -> list[torch.Tensor]:
        return [p.grad.detach() if p.grad is not None else torch.zeros_like(p)
                for p in self.params]

    def _changes(self) -> list[torch.Tensor] | None:
        """−Δθ of the step just taken, where it was kept."""
        return self._before if self._step_seen else None

    def _view(self, loss, inputs, targets) -> StepView:
        grads = [p.grad if p.grad is not None else p.new_zeros(()) for p in self.params]
        changes = self._changes()
        squares = squared_norms(grads + [p.detach() for p in self.params] + (changes or []))
        args, kwargs, output = self._forward or ((), {}, None)
        first = inputs if inputs is not None else next(
            (a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)), None)
        loss_at, baseline = self._loss_closures(loss, inputs, targets, args, kwargs, output)
        return StepView(
            step=self.step_index, model=self.model, params=self.params,
            layer_numbers=self.layer_numbers, layer_names=self.layer_names, squares=squares,
            seen=frozenset(i for i, p in zip(self.layer_numbers, self.params, strict=True)
                           if p.grad is not None),
            changes=changes, optimizer=self.optimizer, inputs=first, trace=self._trace,
            capture=self.capture, stale=torch.stack(list(self._stale.values())).sum()
            if self._stale else None, recurrent=dict(self._recurrent), loss_at=loss_at,
            baseline=baseline)

    def _loss_closures(self, loss, inputs, targets, args, kwargs, output):
        """(loss_at(rows), baseline()): from the loss function and batch when given, else from
        the trace's tape of the loss computation; None where neither is available."""
        predict = self._input_independent(output)
        if self.loss_fn is not None and inputs is not None and targets is not None:
            def loss_at(rows):
                return self.loss_fn(self.model(inputs[:rows]), targets[:rows])

            def baseline():
                return None if predict is None else self.loss_fn(predict(), targets)
            return loss_at, baseline
        tape = self._trace.tape if self._trace is not None else None
        if tape is None or not isinstance(loss, torch.Tensor) or output is None:
            return None, None
        batch = batch_size(output)
        cut = batch is not None and batch_size((args, kwargs)) == batch  # batch-first

        def loss_at(rows):
            rows = rows if cut and rows and rows < batch else None
            return tape.replay(self.model(*first_rows(args, rows), **first_rows(kwargs, rows)),
                               loss, rows)
        return loss_at, lambda: None if predict is None else tape.replay(predict(), loss)

    def _input_independent(self, output) -> Callable | None:
        """The input-independent prediction the loss baseline uses: the output's mean over the
        batch, or, for batches under 16, over the recent traced steps' batches (at least 5)."""
        tensors = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor)]
        if not tensors or not self.traced:
            return None
        rows = tensors[0].shape[0] if tensors[0].dim() else 0
        if rows >= 16:
            return lambda: batch_mean(output)
        means = tree_map(lambda t: t.detach().mean(0) if isinstance(t, torch.Tensor) and
                         t.is_floating_point() and t.dim() > 0 else t, output)
        self._output_means.append(means)
        if len(self._output_means) < 5:
            return None
        recent = list(self._output_means)

        def predict():
            return tree_map(lambda t, *means: torch.stack(means).mean(0).expand_as(t)
                            if isinstance(t, torch.Tensor) and t.is_floating_point() else t,
                            output, *recent)
        return predict

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
        groups = self.optimizer.param_groups[0] if self.optimizer is not None else {}
        betas = groups.get("betas", (math.nan, math.nan))
        return rules.Context(
            layers=tuple(self.layer_names), optimizer=type(self.optimizer).__name__
            if self.optimizer is not None else "", lr=float(groups.get("lr", math.nan)),
            momentum=float(groups.get("momentum", betas[0] if groups else 0.0)))

    def check(self) -> None:
        """Apply the rules to the history now, and keep what persists (a rule that raises is
        recorded among the failures, never raised into the user's loop)."""
        self._flush()
        if self.history:
            try:
                findings = rules.diagnose(self.history, self.context())
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
                              self.quantities["curvature"].every)

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

    def close(self) -> None:
        self._close_trace()
        self._flush()
        self.speaker.close(self.summary)  # the last verdicts, to the loggers
        for handle in self._handles + self._stale_hooks:
            handle.remove()
        self.capture.remove()


def first_rows(tree, rows: int | None):
    """The tree with every tensor cut to its first `rows` rows (unchanged for None)."""
    return tree if rows is None else tree_map(
        lambda t: t[:rows] if isinstance(t, torch.Tensor) and t.dim() else t, tree)


def batch_mean(output):
    """An input-independent prediction: each floating tensor of the output replaced by its mean
    over the batch (the first axis), broadcast back to its shape."""
    return tree_map(lambda t: t.detach().mean(0, keepdim=True).expand_as(t)
                    if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim() > 0
                    else t, output)


@contextmanager
def watch(model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
          loss_fn: Callable | None = None, **options) -> Iterator[Doctor]:
    """Watch a training loop: `with watch(model, optimizer, loss_fn) as dr: ... dr.step(loss)`.
    A verdict is printed when it begins (live=False: only in `report()`); `log_to` takes
    "tensorboard:DIR", "mlflow[:URI]" or a list of them, `on_verdict` a function of the verdict,
    `abort_on` verdict names that stop the loop with `DoctorAbort`."""
    options.setdefault("live", True)
    doctor = Doctor(model, optimizer, loss_fn, **options)
    try:
        yield doctor
    finally:
        doctor.close()
