"""What the doctor measures: small classes, each with its schedule, each returning plain numbers.

A quantity works in two halves. `measure(watched)` reads what the hooks of the Doctor
(gradfail.doctor.monitor) caught during the step and returns raw readings, as tensors where
they are computed on the device; the Doctor moves every quantity's tensors off the device in
one transfer (`as_floats`), and `derive(raw, watched)` turns the plain numbers into the
recorded ones (per-layer sums, ratios, the noise statistics) in Python, where a few floats cost
nothing. `every` is the schedule in steps (None: never).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from gradfail.doctor import curvature
from gradfail.doctor.per_sample import functional_norms

SATURATED = 0.01  # a smooth activation's derivative below this counts as saturated


class Quantity:
    every: int | None = 1

    def measure(self, watched) -> dict:
        raise NotImplementedError

    def derive(self, raw: dict, watched) -> dict[str, float]:
        return raw


def squared_norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Each tensor's squared norm, as one vector, in one fused call."""
    return torch.stack(torch._foreach_norm(tensors)).square()


@dataclass
class LayerGradients(Quantity):
    """Per-layer gradient norms and gradient/weight ratios and, when the optimizer's step was
    seen, update/weight ratios ‖Δθ‖/‖θ‖ (θ after the step), from every parameter's norms in
    one fused call."""

    every: int | None = 1

    def measure(self, watched) -> dict:
        return {"squares": watched.squares(), "seen": watched.layers_with_grad()}

    def derive(self, raw: dict, watched) -> dict[str, float]:
        count, squares = len(watched.params), raw["squares"]
        grads = per_layer(squares[:count], watched.layer_numbers, len(watched.layers))
        weights = per_layer(squares[count:2 * count], watched.layer_numbers,
                            len(watched.layers))
        found = {"grad_norm": math.sqrt(sum(grads))}
        for i, name in enumerate(watched.layers):
            if i in raw["seen"]:
                found[f"grad_norm/{name}"] = math.sqrt(grads[i])
                found[f"grad_ratio/{name}"] = math.sqrt(grads[i] / max(weights[i], 1e-24))
        if len(squares) > 2 * count:
            changes = per_layer(squares[2 * count:], watched.layer_numbers,
                                len(watched.layers))
            found |= {f"update_ratio/{name}": math.sqrt(changes[i] / max(weights[i], 1e-24))
                      for i, name in enumerate(watched.layers)}
        return found


def per_layer(squares: list[float], layer_numbers: list[int], layers: int) -> list[float]:
    """Per-parameter squared norms summed within each layer."""
    sums = [0.0] * layers
    for layer, square in zip(layer_numbers, squares, strict=True):
        sums[layer] += square
    return sums


@dataclass
class GradientNoise(Quantity):
    """The gradient's signal-to-noise ratio and noise scale, one bias-corrected family (Cockpit's
    norm test and McCandlish et al. 2018's B_simple are the same statistic).

    From per-sample gradients gᵢ (i = 1..B) with mean ḡ: tr Σ̂ = (Σᵢ‖gᵢ‖² − B‖ḡ‖²)/(B − 1),
    ‖G‖² ≈ ‖ḡ‖² − tr Σ̂/B (unbiased); snr = ‖G‖²/tr Σ̂ per sample, batch_snr = B·snr, and the
    noise scale B_simple = tr Σ̂/‖G‖². Per-sample norms come from hooks on Linear and Conv layers,
    for the first `samples` samples of the batch (E‖gᵢ‖² is estimated as well from a part of the
    batch, at a fraction of the cost), or from vmap(grad) on the whole batch every
    `functional_every` steps when other layers hold parameters and the loss function and batch
    were given."""

    every: int | None = 1
    functional_every: int = 10
    samples: int = 32

    def measure(self, watched) -> dict:
        found = None
        if (watched.coverage < 1 and watched.can_call_loss
                and watched.step_index % self.functional_every == 0):
            found = self._functional(watched)
        if found is None:
            found = self._hooked(watched)
        return {} if found is None else found

    def _hooked(self, watched) -> dict | None:
        caught = watched.capture.norms(self.samples)
        if caught is None:
            return None
        contributions, layers, batch = caught
        covered = [watched.index_of[id(p)] for m in layers for p in m.parameters(recurse=False)
                   if p.requires_grad]
        # sample i's contribution cᵢ to the gradient g = Σᵢ cᵢ is gᵢ/B for a mean loss: the
        # per-sample gradients are B·cᵢ, their mean g (the ratios do not depend on the scale)
        return {"per_sample": contributions.mean() * batch**2, "squares": watched.squares(),
                "covered": covered, "batch": batch, "noise_coverage": sum(
                    watched.params[i].numel() for i in covered) / watched.trainable}

    def _functional(self, watched) -> dict | None:
        try:
            per_sample, mean_squared = functional_norms(watched.model, watched.loss_fn,
                                                        watched.inputs, watched.targets)
        except Exception:  # a model vmap cannot batch (BatchNorm in train mode, in-place ops)
            return None
        return {"per_sample": per_sample.mean(), "mean_squared": mean_squared,
                "batch": per_sample.numel(), "noise_coverage": 1.0}

    def derive(self, raw: dict, watched) -> dict[str, float]:
        mean_squared = raw.get("mean_squared")
        if mean_squared is None:  # the hooked layers' part of the batch gradient's norm
            mean_squared = sum(raw["squares"][i] for i in raw["covered"])
        return self.statistics(raw["per_sample"], mean_squared, raw["batch"]) | {
            "noise_coverage": raw["noise_coverage"]}

    @staticmethod
    def statistics(per_sample: float, mean_squared: float, batch: int) -> dict[str, float]:
        """From the mean squared norm of (some of) a batch's per-sample gradients, E‖gᵢ‖² =
        ‖G‖² + tr Σ, and the squared norm of the batch's mean gradient, E‖ḡ‖² = ‖G‖² + tr Σ/B:
        both unbiased."""
        if batch < 2:
            return {}
        trace = (per_sample - mean_squared) * batch / (batch - 1)
        signal = mean_squared - trace / batch
        snr = signal / trace if trace > 0 else math.inf  # unbiased, so it may be negative
        return {"snr": snr, "batch_snr": batch * snr, "noise_scale": trace / signal
                if signal > 0 else math.inf, "batch": float(batch)}


@dataclass
class Activations(Quantity):
    """Per activation module: the fraction of elements with zero derivative (flat), with a
    small nonzero one (saturated, below 0.01), and the fraction of units whose derivative is
    zero on every sample (dead); and, once, the zero-derivative fraction at a standard normal
    probe, which tells a flat function (a step link) from inputs pushed into a flat region
    (dead ReLUs). Derivatives by a forward-mode product with ones, exact for elementwise
    modules, at the first `samples` samples of the batch; the forward hooks reduce them as they
    are met (`summarise`), so no derivative is kept."""

    every: int | None = 1
    samples: int = 32

    def measure(self, watched) -> dict:
        return dict(watched.activation_summaries)

    def derive(self, raw: dict, watched) -> dict[str, float]:
        found = {}
        for name, (flat, saturated, dead) in raw.items():
            found |= {f"probe_flat/{name}": watched.probe_flat[name], f"flat/{name}": flat,
                      f"saturated/{name}": saturated, f"dead/{name}": dead}
        return found

    @staticmethod
    def summarise(derivative: torch.Tensor) -> torch.Tensor:
        """(flat, saturated, dead) fractions of one derivative tensor, as one vector."""
        magnitude = derivative.detach().abs()
        # counted by signs of float tensors: comparisons to bool tensors are several times
        # slower on a CPU
        flat = 1 - magnitude.sign().mean()
        saturated = (SATURATED - magnitude).clamp_(min=0).sign_().mean() - flat
        unit_axis = 1 if magnitude.dim() in (2, 4, 5) else magnitude.dim() - 1
        others = tuple(i for i in range(magnitude.dim()) if i != unit_axis)
        dead = ((magnitude.amax(dim=others) == 0).float().mean() if others
                else torch.zeros((), device=magnitude.device))
        return torch.stack([flat, saturated, dead])


@dataclass
class Curvature(Quantity):
    """λ_min and λ_max by `lanczos_steps` Lanczos steps, the trace by Hutchinson (`probes`
    Rademacher vectors plus the Lanczos start) with its standard error, and lr·λ_max against
    the stability limit 2(1 + momentum) of (heavy-ball) gradient descent. Evaluated on at most
    `batch` samples of the step's batch; the model's buffers and the RNG are left as found."""

    every: int | None = 50
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


def as_floats(readings: list[dict]) -> list[dict]:
    """The readings with every tensor among them moved off the device in one transfer: a 0-d
    tensor becomes a float, a larger one a list of floats; other values are kept."""
    tensors = [v.reshape(-1) for found in readings for v in found.values()
               if isinstance(v, torch.Tensor)]
    moved = iter(torch.cat(tensors).tolist() if tensors else [])
    return [{k: (v if not isinstance(v, torch.Tensor) else next(moved) if v.dim() == 0
                 else [next(moved) for _ in range(v.numel())]) for k, v in found.items()}
            for found in readings]


def trainable_layers(model: nn.Module) -> dict[str, list[torch.Tensor]]:
    """{module name: its own trainable parameters}, in registration order."""
    return {name or type(model).__name__: params for name, module in model.named_modules()
            if (params := [p for p in module.parameters(recurse=False) if p.requires_grad])}
