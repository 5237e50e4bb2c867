"""What the doctor's hooks catch during a step (gradfail.doctor.monitor.Doctor inherits them):
the step's first forward (its arguments and output, and the trace of a traced step), a
recurrent layer's input, the gradient already held when the backward reaches each parameter,
and, around the optimizer's step, the gradients it read and the weights before and after."""

from __future__ import annotations

from collections.abc import Callable

import torch

from gradfail.doctor.loggers import warn
from gradfail.doctor.trace import StepTrace


MICRO_BATCHES = 64  # past this many calls without an optimizer step, each call is a step: the
# optimizer given is not the one that trains (a warning says so)


class StepHooks:
    """The hook methods of a Doctor; the state they fill is the Doctor's."""

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
                held = self.params[index].grad  # None when cleared (zero_grad's default)
                self._stale[index] = None if held is None else held.detach().square().sum()
        return hook

    def _no_step(self, loss, judged) -> bool:
        """Whether a call to dr.step closes no optimizer step (none ran since the last call):
        after a step a mixed-precision scaler skipped (non-finite gradients), which is then
        forgotten; or after a micro-batch of the step to come (gradient accumulation), whose
        loss is kept for the step's mean (and, the first, as the loss the trace taped)."""
        if self.optimizer is None or self._optimizer_steps != self._steps_at_call:
            return False
        if not self._finite_gradients():
            self.skip()
            return True
        if not self._accumulates:
            return False
        if len(self._micro) < MICRO_BATCHES:
            self._judged = judged if not self._micro else self._judged
            self._micro.append(loss)
            self.capture.micro += 1
            return True
        self._accumulates = False
        warn(f"{MICRO_BATCHES} calls to step() without a step of the optimizer given to watch: "
             "from now on each call is a step (pass the optimizer that trains)")
        return False

    def _finite_gradients(self) -> bool:
        grads = [p.grad for p in self.params if p.grad is not None]
        return not grads or bool(torch.stack(torch._foreach_norm(grads)).isfinite().all())

    def _close_trace(self) -> None:
        if self._trace is not None:
            self._trace.close()

    def _before_step(self, optimizer, args, kwargs) -> None:
        """The gradients as the optimizer reads them (unscaled by a mixed-precision scaler; kept
        so that a zero_grad before dr.step does not hide them) and θ before the step."""
        self._close_trace()
        if self._listening and (self._plan or self._keep):
            self._grads = [p.grad for p in self.params]
            if self.scaler is not None and self.capture.active and self.scaler.is_enabled():
                self._loss_scale = float(self.scaler.get_scale())
        if self._listening and (self.due("alignment") or self._keep):
            weights = [p.detach() for p in self.params]
            if self._before is None:
                self._before = [w.clone() for w in weights]
            else:  # into the same buffers every time: fresh ones cost page faults on a CPU
                torch._foreach_copy_(self._before, weights)

    def _after_step(self, optimizer, args, kwargs) -> None:
        self._optimizer_steps += 1
        if self._listening and self._before is not None and (self.due("alignment")
                                                              or self._keep):
            torch._foreach_sub_(self._before, [p.detach() for p in self.params])
            self._step_seen = True


def held_before(stale: dict) -> torch.Tensor | float | None:
    """‖the gradient held when the step's first backward began‖² over the parameters it reached
    (0.0 where every one was cleared; None when none was watched)."""
    held = [h for h in stale.values() if h is not None]
    return torch.stack(held).sum() if held else 0.0 if stale else None
