"""`gradfail doctor SCRIPT.py`: a user's unchanged training script, run under the doctor.

Global hooks find what to watch: every module that runs a forward pass is remembered until the
first optimizer steps, and at an optimizer's first step the largest remembered module whose
trainable parameters that optimizer trains becomes the watched model (from the next step on);
an optimizer that first steps later (a second phase) looks among every live module too. The
forward hook is removed once the first model is found: it would cost a call per module and
forward for the rest of the run. Each scalar `.backward()` records
the loss tensor the step is judged by (every optimizer that steps after it is judged by it,
once); the doctor's trace tapes how it was computed from the
model's output, so curvature and the loss baseline need no loss function from the user. The
script's own exceptions are shown with their traceback; under `--json` its standard output
goes to standard error, so that standard output holds only the doctor's document.
"""

from __future__ import annotations

import contextlib
import gc
import runpy
import sys
import time
import traceback
import weakref
from pathlib import Path

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from gradfail.doctor.monitor import Doctor, DoctorError
from gradfail.doctor.wrappers import unwrap


class ScriptWatch:
    """The global hooks, and one Doctor per optimizer found."""

    def __init__(self):
        self.seen: weakref.WeakSet[nn.Module] = weakref.WeakSet()
        self.doctors: dict[int, Doctor] = {}
        self.loss: torch.Tensor | None = None
        self.backwards = 0  # scalar backward calls so far
        self.judged: dict[int, int] = {}  # optimizer id -> backwards when its doctor last stepped
        self._backward = torch.Tensor.backward

    def __enter__(self) -> ScriptWatch:
        watch = self

        def backward(tensor: torch.Tensor, *args, **kwargs):
            if tensor.numel() == 1:
                watch.loss, watch.backwards = tensor, watch.backwards + 1
            return watch._backward(tensor, *args, **kwargs)
        torch.Tensor.backward = backward
        self._remember = nn.modules.module.register_module_forward_hook(
            lambda module, inputs, output: self.seen.add(module))
        self._handles = [register_optimizer_step_post_hook(self._stepped)]
        return self

    def __exit__(self, *exc) -> None:
        torch.Tensor.backward = self._backward
        for handle in [*self._handles, self._remember]:
            handle.remove()
        for doctor in self.doctors.values():
            doctor.diagnose()  # a last check at the last step
            doctor.close()

    def _stepped(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        doctor = self.doctors.get(id(optimizer))
        if doctor is None:
            model = trained_model(optimizer, list(self.seen)) or (
                trained_model(optimizer, live_modules()) if self.doctors else None) or \
                BareTensors([p for group in optimizer.param_groups for p in group["params"]
                             if p.requires_grad])
            self.doctors[id(optimizer)] = Doctor(model, optimizer, name=type(
                unwrap(model)[0]).__name__)
            self._remember.remove()
        elif self.loss is not None and self.judged.get(id(optimizer)) != self.backwards:
            doctor.step(self.loss)  # each optimizer's doctor once per backward: two optimizers
            self.judged[id(optimizer)] = self.backwards  # may step on one summed loss


class BareTensors(nn.Module):
    """The tensors an optimizer trains when no module holds them (a model written as bare
    tensors and functions): the doctor watches them as one layer, and traces the step from
    the optimizer's step to the next (gradfail.doctor.monitor)."""

    def __init__(self, tensors: list[torch.Tensor]):
        super().__init__()
        self.tensors = tensors

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):
        for i, tensor in enumerate(self.tensors):
            yield f"{prefix}tensor{i}", tensor

    def parameters(self, recurse: bool = True):
        yield from self.tensors


def trained_model(optimizer: torch.optim.Optimizer, modules: list[nn.Module]
                  ) -> nn.Module | None:
    """The largest of the modules whose trainable parameters the optimizer all trains."""
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    candidates = [m for m in modules if (params := [p for p in m.parameters()
                                                    if p.requires_grad])
                  and all(id(p) in trained for p in params)]
    return max(candidates, key=lambda m: sum(p.numel() for p in m.parameters()), default=None)


def live_modules() -> list[nn.Module]:
    return [o for o in gc.get_objects() if isinstance(o, nn.Module)]


def run_script(path: str, argv: list[str], quiet_stdout: bool = False
               ) -> tuple[list[Doctor], float]:
    """Run the script as __main__ with `argv`; (the doctors that watched it, its wall time in
    seconds). With `quiet_stdout`, what the script prints goes to standard error."""
    script = Path(path)
    if not script.is_file():
        raise DoctorError(f"no such script: {path}")
    saved_argv = sys.argv
    sys.argv = [str(script), *argv]
    start = time.perf_counter()
    try:
        with ScriptWatch() as watch, contextlib.redirect_stdout(
                sys.stderr if quiet_stdout else sys.stdout):
            try:
                runpy.run_path(str(script), run_name="__main__")
            except SystemExit as done:
                if done.code not in (None, 0):
                    raise DoctorError(f"{path} exited with status {done.code}") from None
            except Exception as error:
                traceback.print_exc()
                raise DoctorError(f"{path} raised {type(error).__name__}: {error}") from None
        doctors = list(watch.doctors.values())
    finally:
        sys.argv = saved_argv
    if not doctors:
        raise DoctorError(f"{path} never stepped an optimizer of a model that ran forward: "
                          "nothing to diagnose")
    return doctors, time.perf_counter() - start
