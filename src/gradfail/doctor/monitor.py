"""The doctor around a user's training loop: hooks on the model and optimizer, a history of
measured quantities per step, and the verdicts drawn from it.

    with gradfail.doctor.watch(model, optimizer, loss_fn) as dr:
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            dr.step(loss, x, y)      # x, y optional: they enable curvature and vmap noise
    dr.report()
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.autograd import forward_ad

from gradfail.doctor import verdicts
from gradfail.doctor.per_sample import GradientCapture
from gradfail.doctor.quantities import (Activations, Curvature, GradientNoise, LayerGradients,
                                        as_floats, squared_norms, trainable_layers)
from gradfail.errors import GradfailError

ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
               nn.Hardtanh, nn.Softplus, nn.Softsign, nn.Hardsigmoid, nn.Hardswish, nn.Mish,
               nn.CELU, nn.SELU, nn.LogSigmoid, nn.Tanhshrink, nn.Softshrink, nn.Hardshrink,
               nn.Threshold)


class DoctorError(GradfailError):
    """A model, loss or script the doctor cannot watch."""


def elementwise(module: nn.Module) -> bool:
    """An activation the doctor differentiates: torch's elementwise ones, or any module that
    declares `elementwise = True`."""
    return isinstance(module, ELEMENTWISE) or getattr(module, "elementwise", False) is True


def derivative(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """An elementwise module's derivative at x, by one forward-mode product with ones (a
    broadcast view, never allocated)."""
    with forward_ad.dual_level():
        return forward_ad.unpack_dual(module.forward(forward_ad.make_dual(
            x, torch.ones((), dtype=x.dtype, device=x.device).expand_as(x)))).tangent


class Doctor:
    """Watches one model (and optionally its optimizer); `step(loss)` closes a training step."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                 loss_fn: Callable | None = None, *, cheap_every: int | None = 1,
                 curvature_every: int | None = 50, name: str = "run"):
        if not isinstance(model, nn.Module):
            raise DoctorError(f"the doctor watches a torch.nn.Module, not a "
                              f"{type(model).__name__}")
        self.model, self.optimizer, self.loss_fn, self.name = model, optimizer, loss_fn, name
        self.layers = trainable_layers(model)
        if not self.layers:
            raise DoctorError(f"{type(model).__name__} has no parameters that require grad: "
                              "there is no training to watch")
        self.params = [p for params in self.layers.values() for p in params]
        self.layer_numbers = [i for i, params in enumerate(self.layers.values())
                              for _ in params]  # each parameter's layer
        self.index_of = {id(p): i for i, p in enumerate(self.params)}
        self.trainable = sum(p.numel() for p in self.params)
        self.capture = GradientCapture(model)
        self.coverage = sum(p.numel() for m in self.capture.layers
                            for p in m.parameters(recurse=False) if p.requires_grad
                            ) / self.trainable
        self.cheap = [LayerGradients(cheap_every), GradientNoise(cheap_every),
                      Activations(cheap_every)]
        self.curvature = Curvature(curvature_every)
        self.history: list[dict] = []
        self.failures: dict[str, str] = {}  # quantity -> the first error it raised
        self.step_index = 0
        self.activation_summaries: dict[str, torch.Tensor] = {}
        self._squares: torch.Tensor | None = None
        self.probe_flat: dict[str, float] = {}
        self.inputs = self.targets = None
        self._listening = True
        self._before: list[torch.Tensor] | None = None  # θ before the step, kept for reuse
        self._step_seen = False
        self._handles = [m.register_forward_hook(self._activation(name))
                         for name, m in model.named_modules() if elementwise(m)]
        if optimizer is not None:
            self._handles += [optimizer.register_step_pre_hook(self._before_step),
                              optimizer.register_step_post_hook(self._after_step)]

    # -- what the hooks catch --------------------------------------------------------------------
    def _activation(self, name: str):
        def hook(module: nn.Module, inputs: tuple, output) -> None:
            if self._listening and torch.is_grad_enabled() and self._due(self.cheap[2]):
                sample = inputs[0].detach()[:self.cheap[2].samples]
                self.activation_summaries[name] = Activations.summarise(derivative(module,
                                                                                   sample))
                if name not in self.probe_flat:
                    probe = torch.randn(inputs[0].shape, generator=torch.Generator(
                        inputs[0].device).manual_seed(0), device=inputs[0].device)
                    self.probe_flat[name] = float((derivative(module, probe) == 0).float()
                                                  .mean())
        return hook

    def _before_step(self, optimizer, args, kwargs) -> None:
        if self._due(self.cheap[0]):
            weights = [p.detach() for p in self.params]
            if self._before is None:
                self._before = [w.clone() for w in weights]
            else:  # into the same buffers every step: fresh ones cost page faults on a CPU
                torch._foreach_copy_(self._before, weights)

    def _after_step(self, optimizer, args, kwargs) -> None:
        if self._due(self.cheap[0]) and self._before is not None:
            torch._foreach_sub_(self._before, [p.detach() for p in self.params])
            self._step_seen = True

    @property
    def changes(self) -> list[torch.Tensor] | None:
        """−Δθ of the optimizer's step just taken, per parameter (None if no step was seen)."""
        return self._before if self._step_seen else None

    def _due(self, quantity) -> bool:
        """Whether a quantity is measured this step (every `every` steps from the first; never
        with every=None)."""
        return quantity.every is not None and self.step_index % quantity.every == 0

    def squares(self) -> torch.Tensor:
        """Every trainable parameter's squared gradient norm (0 where no gradient reached it),
        squared weight norm and, after an optimizer step, squared update norm, in that order:
        one fused call per step, shared by the quantities."""
        if self._squares is None:
            zero = self.params[0].new_zeros(())
            grads = [zero if p.grad is None else p.grad for p in self.params]
            self._squares = squared_norms(grads + [p.detach() for p in self.params]
                                          + (self.changes or []))
        return self._squares

    def layers_with_grad(self) -> set[int]:
        """The layers a gradient reached this step."""
        return {i for i, p in zip(self.layer_numbers, self.params, strict=True)
                if p.grad is not None}

    # -- the optimizer's settings, for the stability limit ---------------------------------------
    @property
    def plain_sgd(self) -> bool:
        return type(self.optimizer) is torch.optim.SGD

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"]) if self.optimizer else math.nan

    @property
    def momentum(self) -> float:
        return float(self.optimizer.param_groups[0].get("momentum", 0.0)) if self.optimizer \
            else 0.0

    @property
    def can_call_loss(self) -> bool:
        return self.loss_fn is not None and self.inputs is not None and self.targets is not None

    # -- one step ----------------------------------------------------------------------------------
    def step(self, loss: torch.Tensor | float, inputs: torch.Tensor | None = None,
             targets: torch.Tensor | None = None) -> dict:
        """Close the step: record the loss and every quantity that is due; returns the record."""
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise DoctorError(f"the loss must be a scalar; got a tensor of shape "
                                  f"{tuple(loss.shape)} (reduce it, e.g. .mean())")
            loss = loss.detach()
        self.inputs, self.targets = inputs, targets
        measured, raw = [], []
        self._listening = self.capture.active = False
        try:
            for quantity in (*self.cheap, self.curvature):
                if self._due(quantity):
                    with self._guard(quantity):
                        raw.append(quantity.measure(self))
                        measured.append(quantity)
        finally:
            self._listening = self.capture.active = True
            self.capture.clear()
            self.activation_summaries, self._squares, self._step_seen = {}, None, False
            self.inputs = self.targets = None
        moved = as_floats([{"loss": loss}, *raw])  # one transfer from the device
        record = {"step": self.step_index, "loss": float(moved[0]["loss"])}
        for quantity, found in zip(measured, moved[1:], strict=True):
            with self._guard(quantity):
                record |= quantity.derive(found, self)
        self.history.append(record)
        self.step_index += 1
        return record

    @contextmanager
    def _guard(self, quantity) -> Iterator[None]:
        """Never break the user's training loop: a quantity that raises is skipped, and its
        first error kept in `failures`."""
        try:
            yield
        except Exception as error:
            self.failures.setdefault(type(quantity).__name__, f"{error}")

    def diagnose(self) -> list[verdicts.Verdict]:
        return verdicts.diagnose(self.history, self.layers)

    def report(self, store=None, console=None) -> list[verdicts.Verdict]:
        """Print the verdicts as a table; with a store, write the quantities to it too."""
        found = self.diagnose()
        verdicts.print_table(found, self.name, len(self.history), console)
        if store is not None:
            verdicts.save(store, self.name, self.history, found)
        return found

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self.capture.remove()


@contextmanager
def watch(model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
          loss_fn: Callable | None = None, **options) -> Iterator[Doctor]:
    """Watch a training loop: `with watch(model, optimizer, loss_fn) as dr: ... dr.step(loss)`."""
    doctor = Doctor(model, optimizer, loss_fn, **options)
    try:
        yield doctor
    finally:
        doctor.close()
