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

from gradfail.doctor import verdicts
from gradfail.doctor.per_sample import GradientCapture
from gradfail.doctor.quantities import (Activations, Curvature, GradientNoise, LayerGradients,
                                        trainable_layers)
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
    """An elementwise module's derivative at x, by one forward-mode product with ones."""
    return torch.func.jvp(module.forward, (x,), (torch.ones_like(x),))[1]


class Doctor:
    """Watches one model (and optionally its optimizer); `step(loss)` closes a training step."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                 loss_fn: Callable | None = None, *, cheap_every: int = 1,
                 curvature_every: int = 50, name: str = "run"):
        if not isinstance(model, nn.Module):
            raise DoctorError(f"the doctor watches a torch.nn.Module, not a "
                              f"{type(model).__name__}")
        self.model, self.optimizer, self.loss_fn, self.name = model, optimizer, loss_fn, name
        self.layers = trainable_layers(model)
        if not self.layers:
            raise DoctorError(f"{type(model).__name__} has no parameters that require grad: "
                              "there is no training to watch")
        self.params = [p for params in self.layers.values() for p in params]
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
        self.derivatives: dict[str, torch.Tensor] = {}
        self.probe_flat: dict[str, float] = {}
        self.inputs = self.targets = None
        self._listening = True
        self._before: dict | None = None
        self._updates: dict = {}
        self._handles = [m.register_forward_hook(self._activation(name))
                         for name, m in model.named_modules() if elementwise(m)]
        if optimizer is not None:
            self._handles += [optimizer.register_step_pre_hook(self._before_step),
                              optimizer.register_step_post_hook(self._after_step)]

    # -- what the hooks catch --------------------------------------------------------------------
    def _activation(self, name: str):
        def hook(module: nn.Module, inputs: tuple, output) -> None:
            if self._listening and torch.is_grad_enabled() and self._due(self.cheap[2]):
                self.derivatives[name] = derivative(module, inputs[0].detach())
                if name not in self.probe_flat:
                    probe = torch.randn(inputs[0].shape, generator=torch.Generator(
                        inputs[0].device).manual_seed(0), device=inputs[0].device)
                    self.probe_flat[name] = float((derivative(module, probe) == 0).float()
                                                  .mean())
        return hook

    def _before_step(self, optimizer, args, kwargs) -> None:
        if self._due(self.cheap[0]):
            self._before = {name: [p.detach().clone() for p in params]
                            for name, params in self.layers.items()}

    def _after_step(self, optimizer, args, kwargs) -> None:
        if self._before is not None:
            self._updates = LayerGradients.updates(self, self._before)
            self._before = None

    def _due(self, quantity) -> bool:
        return self.step_index % quantity.every == 0

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
            loss = float(loss.detach())
        self.inputs, self.targets = inputs, targets
        record = {"step": self.step_index, "loss": float(loss)} | self._updates
        self._listening = self.capture.active = False
        try:
            for quantity in (*self.cheap, self.curvature):
                if self._due(quantity):
                    try:
                        record |= quantity.measure(self)
                    except Exception as error:  # never break the user's training loop
                        self.failures.setdefault(type(quantity).__name__, f"{error}")
        finally:
            self._listening = self.capture.active = True
            self.capture.clear()
            self.derivatives, self._updates = {}, {}
            self.inputs = self.targets = None
        self.history.append(record)
        self.step_index += 1
        return record

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
