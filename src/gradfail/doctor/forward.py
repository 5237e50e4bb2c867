"""What the doctor reads from the forward pass, its inputs and its loss: each activation's
derivative (however the activation is written), the recurrent Jacobian's growth, the inputs'
scale and correlation, what a log-loss was given and the loss of an input-independent
prediction, and the curvature on a few rows. Quantities in the sense of
gradfail.doctor.quantities (a name, a schedule, `measure` on a read-only `StepView`, `derive`);
the gradient's own quantities are there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from gradfail.doctor import curvature
from gradfail.doctor.quantities import Quantity, StepView, left_as_found
from gradfail.doctor.trace import KINDS, TINY


@dataclass
class Activations(Quantity):
    """Every nonlinearity the trace saw, however written (module, `F.relu` in a forward, a
    Transformer layer's activation, `torch.tanh` in a hand-written RNN loop), by its kind
    (gradfail.doctor.trace.classify): the fraction of zero derivatives of a flat function; the
    fraction of units of a one-sided (ReLU-like) function whose derivative stayed below 1% of
    its typical one on every sample of the last `memory` measured steps (dead: never active,
    judged on enough samples); the share of its typical derivative a saturating function
    passes; the RMS of its input; and the RMS of the gradient that reached its output, first
    call and last call (a loop's calls are its time steps or its layers)."""

    name: str = "activations"
    every: int | None = 10
    memory: int = 4
    traced: bool = True
    _alive: dict = field(default_factory=dict, repr=False)  # site -> recent per-unit activity

    def measure(self, view: StepView) -> dict:
        if view.trace is None:
            return {}
        readings: dict = {"sites": {site.name: site for site in view.trace.sites.values()}}
        for site in view.trace.sites.values():
            readings[f"summary/{site.name}"] = torch.stack(site.summaries).mean(0)
            if site.kind == "one-sided":
                readings[f"dead/{site.name}"] = self._dead(site)
            if site.reached:
                readings[f"first/{site.name}"] = site.reached[0]
                readings[f"last/{site.name}"] = site.reached[-1]
        return readings

    def _dead(self, site) -> torch.Tensor:
        """The share of units never active over this and the last measured steps."""
        shapes = {p.shape for p in site.peaks}
        peaks = torch.stack(site.peaks).amax(0) if len(shapes) == 1 else site.peaks[-1]
        active = (peaks > TINY * site.typical).float()
        recent = self._alive.setdefault(site.name, [])
        recent[:] = [a for a in recent if a.shape == active.shape][-(self.memory - 1):]
        recent.append(active)
        return 1 - torch.stack(recent).amax(0).mean()

    def derive(self, raw: dict, view: StepView) -> dict[str, float]:
        readings = {}
        for name, site in raw.get("sites", {}).items():
            zero, tiny, square, passing = raw[f"summary/{name}"]
            readings[f"kind/{name}"] = float(KINDS.index(site.kind))
            readings[f"order/{name}"] = float(site.order)
            if site.final:
                readings[f"final/{name}"] = 1.0
            readings[f"input_rms/{name}"] = math.sqrt(square)
            readings[f"passing/{name}"] = passing
            if site.kind == "flat":
                readings[f"flat/{name}"] = zero
            elif site.kind == "one-sided":
                readings[f"dead/{name}"] = raw[f"dead/{name}"]
            elif site.kind == "saturating":
                readings[f"saturated/{name}"] = tiny
            if f"first/{name}" in raw:
                readings[f"act_grad/{name}"] = math.sqrt(raw[f"first/{name}"])
                if len(site.reached) > 1:
                    readings[f"act_grad_last_call/{name}"] = math.sqrt(raw[f"last/{name}"])
                    readings[f"calls/{name}"] = float(len(site.reached))
        return readings


@dataclass
class Recurrence(Quantity):
    """For every nn.RNN / nn.GRU / nn.LSTM in the model: how much its last output depends on its
    first input against its last, ‖∂(v·y_T)/∂x_1‖ / ‖∂(v·y_T)/∂x_T‖ for a fixed random direction
    v, on the first `samples` sequences it saw this step: far below 1 when gradients vanish
    through time, far above when they explode (the fused kernels hide their gates, so the
    module itself is differentiated again)."""

    name: str = "recurrence"
    every: int | None = 5
    samples: int = 8
    traced: bool = True

    def measure(self, view: StepView) -> dict:
        readings = {}
        for name, (module, x) in (view.recurrent or {}).items():
            sequence = x[:self.samples] if module.batch_first else x[:, :self.samples]
            sequence = sequence.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                out = module(sequence)[0]
                last = out[:, -1] if module.batch_first else out[-1]
                direction = torch.randn(last.shape[-1], generator=torch.Generator(
                    last.device).manual_seed(0), device=last.device, dtype=last.dtype)
                grad, = torch.autograd.grad((last * direction).sum(), sequence)
            time_axis = 1 if module.batch_first else 0
            norms = grad.square().sum(-1).sum(1 - time_axis)  # (T,)
            readings[name] = norms[[0, -1]].sqrt()
        return readings

    def derive(self, raw: dict, view: StepView) -> dict[str, float]:
        readings = {}
        for name, (first, last) in raw.items():
            readings[f"time_ratio/{name}"] = first / last if last > 0 else math.inf
            readings[f"gated/{name}"] = float(not isinstance(view.recurrent[name][0], nn.RNN))
        return readings


@dataclass
class InputScale(Quantity):
    """The model's (floating-point) input, per feature (the last axis of a flat input, the
    channel axis of an image): the largest RMS over features, the ratio of the largest to the
    smallest feature standard deviation among features that vary, and, for flat inputs of at
    most `features` features, the condition number of their correlation matrix, from moments
    accumulated over the measured steps (the curvature a linear first layer sees, whatever
    the features' scales)."""

    name: str = "inputs"
    every: int | None = 10
    features: int = 256
    _moments: list | None = field(default=None, repr=False)  # [n, Σx, Σxxᵀ] in float64
    _condition_at: int = field(default=0, repr=False)  # measurements since the last solve
    _last_condition: torch.Tensor | None = field(default=None, repr=False)

    def measure(self, view: StepView) -> dict:
        x = view.inputs
        if x is None or x.dim() < 1:
            return {}
        if not x.is_floating_point() or x.dim() < 2 or x.shape[0] < 2:
            return {"batch_size": x.shape[0]}
        axis = 1 if x.dim() >= 4 else -1
        features = x.detach().movedim(axis, -1).reshape(-1, x.shape[axis]).float()
        readings = {"rms": features.square().mean(0).sqrt(), "std": features.std(0),
                 "batch_size": x.shape[0]}
        if x.dim() == 2 and 2 <= x.shape[1] <= self.features:
            readings["correlation_condition"] = self._condition(features.double())
        return readings

    def _condition(self, x: torch.Tensor) -> torch.Tensor:
        if self._moments is None or self._moments[1].shape[0] != x.shape[1]:
            self._moments = [0, torch.zeros_like(x[0]), torch.zeros(x.shape[1], x.shape[1],
                                                                       dtype=x.dtype,
                                                                       device=x.device)]
        self._moments[0] += x.shape[0]
        self._moments[1] += x.sum(0)
        self._moments[2] += x.T @ x
        self._condition_at += 1
        if self._last_condition is not None and self._condition_at % 5:
            return self._last_condition  # the moments move slowly: solve every 5th time
        n, total, outer = self._moments
        mean = total / n
        covariance = outer / n - torch.outer(mean, mean)
        scale = covariance.diagonal().clamp(min=0).sqrt()
        varying = scale > 1e-8 * scale.max()
        if varying.sum() < 2:
            return torch.ones((), dtype=x.dtype, device=x.device)
        correlation = covariance[varying][:, varying] / torch.outer(scale[varying],
                                                                    scale[varying])
        values = torch.linalg.eigvalsh(correlation)
        self._last_condition = values[-1] / values[0].clamp(min=1e-12 * float(values[-1]))
        return self._last_condition

    def derive(self, raw: dict, view: StepView) -> dict[str, float]:
        if "rms" not in raw:
            return {"batch_size": float(raw["batch_size"])} if raw else {}
        rms, std = raw["rms"], raw["std"]
        varying = [s for s in std if s > 1e-8]
        readings = {"input_rms_max": max(rms), "input_rms_median": sorted(rms)[len(rms) // 2],
                 "batch_size": float(raw["batch_size"])}
        if len(varying) >= 2:
            readings["input_std_spread"] = max(varying) / min(varying)
        if "correlation_condition" in raw:
            readings["input_condition"] = raw["correlation_condition"]
        return readings


@dataclass
class LossInputs(Quantity):
    """What the loss was given: for torch's log-losses, the share of inputs that are
    probabilities where logits or log-probabilities belong, a classifier's batch accuracy, and
    the share of the batch in its most common class (with that class: ordered data shows as
    batches of one class at a time);
    and the loss of an input-independent prediction, the batch-mean output, so that
    `input_gain` = (baseline − loss)/|baseline| says how much the model has learned from its
    inputs (≤ 0: nothing beyond the output's mean)."""

    name: str = "loss_inputs"
    every: int | None = 5
    traced: bool = True

    def measure(self, view: StepView) -> dict:
        readings = {}
        if view.trace is not None and view.trace.log_losses:
            first = view.trace.log_losses[0]
            readings["loss_kind"] = first["loss"]
            readings |= {k: v for k, v in first.items() if k != "loss"}
        if view.baseline is not None:
            with torch.no_grad():
                baseline = view.baseline()
            if baseline is not None and baseline.numel() == 1:
                readings["baseline_loss"] = baseline.detach().reshape(())
        return readings

    def derive(self, raw: dict, view: StepView) -> dict[str, float]:
        readings = {}
        if "probabilities" in raw:
            readings[f"probability_inputs/{raw['loss_kind']}"] = raw["probabilities"]
        if "accuracy" in raw:
            readings["accuracy"] = raw["accuracy"]
        if "purity" in raw:
            readings["batch_purity"], readings["batch_class"] = raw["purity"], float(raw["majority"])
        if "baseline_loss" in raw:
            readings["baseline_loss"] = raw["baseline_loss"]
        return readings


@dataclass
class Curvature(Quantity):
    """λ_min and λ_max by `lanczos_steps` Lanczos steps, the trace by Hutchinson (`probes`
    Rademacher vectors plus the Lanczos start, when probes > 0) with its standard error, and,
    for SGD, lr·λ_max against the stability limit 2(1 + momentum) of (heavy-ball) gradient
    descent. Evaluated on at most `batch` samples of the step's batch where the loss can be
    re-evaluated on a part (else on the whole batch); the model's buffers and the RNG are
    left as found. On 32 samples λ_max is biased high when the input dimension is close to
    that (the Marchenko–Pastur edge): the rules never read it alone."""

    name: str = "curvature"
    every: int | None = 50
    lanczos_steps: int = 10
    probes: int = 0
    batch: int = 32
    traced: bool = True
    workspace: curvature.Workspace = field(default_factory=curvature.Workspace, repr=False)

    def measure(self, view: StepView) -> dict:
        if view.loss_at is None:
            return {}
        with left_as_found(view):
            hessian = curvature.Hessian(lambda: view.loss_at(self.batch), view.params)
            generator = torch.Generator(device=view.params[0].device).manual_seed(view.step)
            start = curvature.rademacher(hessian, generator)
            low, high, first = curvature.lanczos(hessian, self.lanczos_steps, start,
                                                 self.workspace)
            readings = {"lambda_min": low, "lambda_max": high}
            if self.probes:
                readings["trace"], readings["trace_se"] = curvature.hutchinson_trace(
                    hessian, self.probes, generator, (first,))
        if view.plain_sgd:
            momentum = view.setting("momentum", 0.0)
            readings |= {"lr_lambda_max": view.setting("lr") * high,
                      "stability_limit": 2 * (1 + momentum)}
        return readings
