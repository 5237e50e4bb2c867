"""What the doctor measures: small classes, each with its schedule, each returning plain numbers.

A quantity's `measure(watched)` reads what the hooks of `Watched` (gradfail.doctor.monitor)
caught during the step and returns {name: float}. `every` is its schedule in steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from gradfail.doctor import curvature
from gradfail.doctor.per_sample import functional_norms

SATURATED = 0.01  # a smooth activation's derivative below this counts as saturated


@dataclass
class LayerGradients:
    """Per-layer gradient norms, gradient/weight ratios, and (after the step) update/weight."""

    every: int = 1

    def measure(self, watched) -> dict[str, float]:
        found, total = {}, 0.0
        for name, params in watched.layers.items():
            grads = [p.grad for p in params if p.grad is not None]
            if not grads:
                continue
            norm = float(torch.sqrt(sum(g.square().sum() for g in grads)))
            weight = float(torch.sqrt(sum(p.detach().square().sum() for p in params)))
            found[f"grad_norm/{name}"] = norm
            found[f"grad_ratio/{name}"] = norm / max(weight, 1e-12)
            total += norm**2
        found["grad_norm"] = math.sqrt(total)
        return found

    @staticmethod
    def updates(watched, before: dict[str, list[torch.Tensor]]) -> dict[str, float]:
        found = {}
        for name, params in watched.layers.items():
            change = sum((p.detach() - old).square().sum() for p, old in
                         zip(params, before[name], strict=True))
            weight = sum(old.square().sum() for old in before[name])
            found[f"update_ratio/{name}"] = float(torch.sqrt(change / max(weight, 1e-24)))
        return found


@dataclass
class GradientNoise:
    """The gradient's signal-to-noise ratio and noise scale, one bias-corrected family (Cockpit's
    norm test and McCandlish et al. 2018's B_simple are the same statistic).

    From per-sample gradients gᵢ (i = 1..B) with mean ḡ: tr Σ̂ = (Σᵢ‖gᵢ‖² − B‖ḡ‖²)/(B − 1),
    ‖G‖² ≈ ‖ḡ‖² − tr Σ̂/B (unbiased); snr = ‖G‖²/tr Σ̂ per sample, batch_snr = B·snr, and the
    noise scale B_simple = tr Σ̂/‖G‖². Per-sample norms come from hooks on Linear and Conv layers,
    or from vmap(grad) every `functional_every` steps when other layers hold parameters and the
    loss function and batch were given."""

    every: int = 1
    functional_every: int = 10

    def measure(self, watched) -> dict[str, float]:
        found = None
        if (watched.coverage < 1 and watched.can_call_loss
                and watched.step_index % self.functional_every == 0):
            found = self._functional(watched)
        if found is None:
            found = self._hooked(watched)
        return {} if found is None else found

    def _hooked(self, watched) -> dict[str, float] | None:
        caught = watched.capture.norms()
        if caught is None:
            return None
        per_sample, layers = caught
        batch = per_sample.numel()
        mean_squared = sum(p.grad.square().sum() for m in layers for p in
                           m.parameters(recurse=False) if p.requires_grad and p.grad is not None)
        covered = sum(p.numel() for m in layers for p in m.parameters(recurse=False)
                      if p.requires_grad)
        return self.statistics(per_sample, mean_squared / batch**2) | {
            "noise_coverage": covered / watched.trainable}

    def _functional(self, watched) -> dict[str, float] | None:
        try:
            per_sample, mean_squared = functional_norms(watched.model, watched.loss_fn,
                                                        watched.inputs, watched.targets)
        except Exception:  # a model vmap cannot batch (BatchNorm in train mode, in-place ops)
            return None
        return self.statistics(per_sample, mean_squared) | {"noise_coverage": 1.0}

    @staticmethod
    def statistics(per_sample: torch.Tensor, mean_squared) -> dict[str, float]:
        batch = per_sample.numel()
        if batch < 2:
            return {}
        mean_squared = float(mean_squared)
        trace = (float(per_sample.sum()) - batch * mean_squared) / (batch - 1)
        signal = mean_squared - trace / batch
        snr = max(signal, 0.0) / trace if trace > 0 else math.inf
        return {"snr": snr, "batch_snr": batch * snr, "noise_scale": trace / signal if signal > 0
                else math.inf, "batch": float(batch)}


@dataclass
class Activations:
    """Per activation module: the fraction of elements with zero derivative (flat), with a
    small nonzero one (saturated, below 0.01), and the fraction of units whose derivative is
    zero on every sample (dead); and, once, the zero-derivative fraction at a standard normal
    probe, which tells a flat function (a step link) from inputs pushed into a flat region
    (dead ReLUs). Derivatives by a forward-mode product with ones, exact for elementwise
    modules."""

    every: int = 1

    def measure(self, watched) -> dict[str, float]:
        found = {}
        for name, derivative in watched.derivatives.items():
            found[f"probe_flat/{name}"] = watched.probe_flat[name]
            flat = derivative == 0
            found[f"flat/{name}"] = float(flat.float().mean())
            found[f"saturated/{name}"] = float(((derivative.abs() < SATURATED) & ~flat)
                                               .float().mean())
            unit_axis = 1 if derivative.dim() in (2, 4, 5) else derivative.dim() - 1
            others = tuple(i for i in range(derivative.dim()) if i != unit_axis)
            found[f"dead/{name}"] = float(flat.all(dim=others).float().mean()) if others else 0.0
        return found


@dataclass
class Curvature:
    """λ_min and λ_max by `lanczos_steps` Lanczos steps, the trace by Hutchinson (`probes`
    Rademacher vectors plus the Lanczos start) with its standard error, and lr·λ_max against
    the stability limit 2(1 + momentum) of (heavy-ball) gradient descent. Evaluated on at most
    `batch` samples of the step's batch; the model's buffers and the RNG are left as found."""

    every: int = 50
    lanczos_steps: int = 10
    probes: int = 4
    batch: int = 32

    def measure(self, watched) -> dict[str, float]:
        if not watched.can_call_loss:
            return {}
        x, y = watched.inputs[:self.batch], watched.targets[:self.batch]
        buffers = {k: v.clone() for k, v in watched.model.named_buffers()}
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            hessian = curvature.Hessian(lambda: watched.loss_fn(watched.model(x), y),
                                        watched.params)
            generator = torch.Generator(device=x.device).manual_seed(watched.step_index)
            start = curvature.rademacher(hessian, generator)
            low, high, first = curvature.lanczos(hessian, self.lanczos_steps, start)
            trace, error = curvature.hutchinson_trace(hessian, self.probes, generator, (first,))
        for name, value in buffers.items():
            dict(watched.model.named_buffers())[name].copy_(value)
        found = {"lambda_min": low, "lambda_max": high, "trace": trace, "trace_se": error}
        if watched.plain_sgd:
            limit = 2 * (1 + watched.momentum)
            found |= {"lr_lambda_max": watched.lr * high, "stability_limit": limit}
        return found


def trainable_layers(model: nn.Module) -> dict[str, list[torch.Tensor]]:
    """{module name: its own trainable parameters}, in registration order."""
    return {name or type(model).__name__: params for name, module in model.named_modules()
            if (params := [p for p in module.parameters(recurse=False) if p.requires_grad])}
