"""What the doctor measures: small classes, each with a name and a schedule, each reading a typed,
read-only view of the step (`StepView`) and returning plain numbers.

A quantity works in two halves. `measure(view)` returns raw readings, as tensors where they are
computed on the device; the Doctor (gradfail.doctor.monitor) moves every quantity's tensors off
the device in one transfer (`as_floats`), and `derive(raw, view)` turns the plain numbers into
the recorded ones in Python, where a few floats cost nothing. `every` is the schedule in steps
(None: never); `traced` quantities read the step's `StepTrace` (gradfail.doctor.trace), so the
trace runs on their steps. The gradient's quantities are here; those of the forward pass, its
inputs and its loss (activations, recurrence, input scale, loss inputs, curvature) are in
gradfail.doctor.forward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from gradfail.doctor.per_sample import GradientCapture


@dataclass(frozen=True)
class StepView:
    """What one training step shows the quantities. `loss_at(rows)` evaluates the step's loss
    again at the current parameters on the first `rows` samples (None: the whole batch), and
    `baseline()` the loss of an input-independent prediction (the batch-mean output); both are
    None when neither a loss function nor a taped loss computation is available."""

    step: int
    model: nn.Module
    params: list[torch.Tensor]
    grads: list[torch.Tensor | None]  # the step's gradients (None where none reached)
    layer_numbers: list[int]  # each parameter's layer
    layer_names: list[str]  # module paths
    squares: torch.Tensor  # ‖g‖², ‖θ‖² (and ‖Δθ‖² after a seen step), per parameter
    seen: frozenset[int]  # layers a gradient reached
    changes: list[torch.Tensor] | None  # −Δθ of the step just taken
    optimizer: torch.optim.Optimizer | None
    inputs: torch.Tensor | None  # the model's first input, when it is a tensor
    trace: object | None  # the StepTrace of a traced step
    capture: GradientCapture
    stale: torch.Tensor | None  # ‖g held before this step's first backward‖², all parameters
    recurrent: dict | None = None  # module path -> (recurrent module, its input this step)
    loss_at: Callable[[int | None], torch.Tensor] | None = None
    baseline: Callable[[], torch.Tensor | None] | None = None
    processes: int = 1  # processes whose gradients DDP averaged into this one
    loss_scale: float = 1.0  # the mixed-precision scale the backward's gradients carried

    @property
    def count(self) -> int:
        return len(self.params)

    @property
    def plain_sgd(self) -> bool:
        return type(self.optimizer) is torch.optim.SGD

    def setting(self, key: str, default: float = math.nan) -> float:
        if self.optimizer is None:
            return default
        value = self.optimizer.param_groups[0].get(key, default)
        return float(value[0] if isinstance(value, tuple) else value)


class Quantity:
    name: str = ""
    every: int | None = 1
    traced: bool = False

    def measure(self, view: StepView) -> dict:
        raise NotImplementedError

    def derive(self, raw: dict, view: StepView) -> dict[str, float]:
        return raw


def squared_norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Each tensor's squared norm, as one vector, in one fused call."""
    return torch.stack(torch._foreach_norm(tensors)).square()


def per_layer(squares: list[float], layer_numbers: list[int], layers: int) -> list[float]:
    """Per-parameter squared norms summed within each layer."""
    sums = [0.0] * layers
    for layer, square in zip(layer_numbers, squares, strict=True):
        sums[layer] += square
    return sums


@dataclass
class LayerGradients(Quantity):
    """Per-layer gradient norms, gradient/weight and update/weight ratios ‖Δθ‖/‖θ‖, the total
    gradient and weight norms, and the share of parameters whose values are not finite."""

    name: str = "layer_gradients"
    every: int | None = 1

    def measure(self, view: StepView) -> dict:
        return {"squares": view.squares}

    def derive(self, raw: dict, view: StepView) -> dict[str, float]:
        count, squares, layers = view.count, raw["squares"], len(view.layer_names)
        grads = per_layer(squares[:count], view.layer_numbers, layers)
        weights = per_layer(squares[count:2 * count], view.layer_numbers, layers)
        readings = {"grad_norm": math.sqrt(sum(grads)), "weight_norm": math.sqrt(sum(weights))}
        if view.optimizer is not None:
            readings["lr"] = view.setting("lr")
        for i, name in enumerate(view.layer_names):
            if i in view.seen:
                readings[f"grad_norm/{name}"] = math.sqrt(grads[i])
                readings[f"grad_ratio/{name}"] = math.sqrt(grads[i] / max(weights[i], 1e-24))
            if not math.isfinite(weights[i]):
                readings[f"nonfinite/weight/{name}"] = 1.0
            elif not math.isfinite(grads[i]):
                readings[f"nonfinite/grad/{name}"] = 1.0
        if len(squares) > 2 * count:
            changes = per_layer(squares[2 * count:], view.layer_numbers, layers)
            readings["update_ratio"] = math.sqrt(sum(changes) / max(sum(weights), 1e-24))
            readings |= {f"update_ratio/{name}": math.sqrt(changes[i] / max(weights[i], 1e-24))
                      for i, name in enumerate(view.layer_names)}
        return readings


@dataclass
class StaleGradients(Quantity):
    """‖the gradient already held when a step's first backward began‖² over ‖the gradient the
    optimizer stepped with‖²: exactly 0 when gradients are cleared every step (before the first
    micro-batch, under deliberate accumulation), near 1 when they are never cleared."""

    name: str = "stale_gradients"
    every: int | None = 1

    def measure(self, view: StepView) -> dict:
        return {} if view.stale is None else {"stale": view.stale,
                                              "held": view.squares[:view.count].sum()}

    def derive(self, raw: dict, view: StepView) -> dict[str, float]:
        if not raw or not raw["held"] > 0:
            return {}
        return {"stale_grad_ratio": raw["stale"] / raw["held"]}


@dataclass
class GradientZeros(Quantity):
    """The share of gradient entries that are exactly zero, over every trainable parameter
    (AutoTrainer's dying-ReLU statistic, kept for its baseline)."""

    name: str = "gradient_zeros"
    every: int | None = 5

    def measure(self, view: StepView) -> dict:
        grads = [g for g in view.grads if g is not None]
        if not grads:
            return {}
        nonzero = torch.stack([g.detach().abs().sign().sum() for g in grads]).sum()
        return {"nonzero": nonzero, "entries": sum(g.numel() for g in grads)}

    def derive(self, raw: dict, view: StepView) -> dict[str, float]:
        return {"zero_grad_fraction": 1 - raw["nonzero"] / raw["entries"]} if raw else {}


@dataclass
class GradientAlignment(Quantity):
    """cos(g_t, g_{t−1}) between consecutive steps' gradients (different batches): near 1 when
    the gradient is signal, near 0 when it is noise (E cos ≈ batch SNR/(1 + batch SNR)),
    negative when each step overshoots; and cos(Δθ_t, Δθ_{t−1}) of consecutive updates. The
    previous gradient is kept one step before each measured one."""

    name: str = "alignment"
    every: int | None = 5
    _previous: list[torch.Tensor] | None = field(default=None, repr=False)
    _previous_change: list[torch.Tensor] | None = field(default=None, repr=False)
    _kept_at: int = -2

    def keep(self, grads: list[torch.Tensor], changes: list[torch.Tensor] | None,
             step: int) -> None:
        """Called by the Doctor on the step before a measured one, with that step's gradients
        and −Δθ."""
        if self._previous is None:
            self._previous = [g.clone() for g in grads]
        else:
            torch._foreach_copy_(self._previous, grads)
        if changes is not None:
            if self._previous_change is None:
                self._previous_change = [c.clone() for c in changes]
            else:
                torch._foreach_copy_(self._previous_change, changes)
        self._kept_at = step

    def measure(self, view: StepView) -> dict:
        if self._kept_at != view.step - 1 or self._previous is None:
            return {}
        readings = {"dot": sum_of_dots(gradients(view), self._previous),
                 "before": squared_norms(self._previous).sum(),
                 "now": view.squares[:view.count].sum()}
        if view.changes is not None and self._previous_change is not None:
            readings |= {"change_dot": sum_of_dots(view.changes, self._previous_change),
                      "change_before": squared_norms(self._previous_change).sum(),
                      "change_now": view.squares[2 * view.count:].sum()}
        return readings

    def derive(self, raw: dict, view: StepView) -> dict[str, float]:
        readings = {}
        if raw.get("before", 0) > 0 and raw["now"] > 0:
            readings["grad_cosine"] = raw["dot"] / math.sqrt(raw["before"] * raw["now"])
        if raw.get("change_before", 0) > 0 and raw["change_now"] > 0:
            readings["update_cosine"] = raw["change_dot"] / math.sqrt(raw["change_before"]
                                                                   * raw["change_now"])
        return readings

    def due_next(self, step: int) -> bool:
        return self.every is not None and (step + 1) % self.every == 0


def gradients(view: StepView) -> list[torch.Tensor]:
    return filled(view.grads, view.params)


def filled(grads: list[torch.Tensor | None], params: list[torch.Tensor]) -> list[torch.Tensor]:
    """The gradients, detached, with zeros for a parameter no gradient reached."""
    return [g.detach() if g is not None else torch.zeros_like(p)
            for g, p in zip(grads, params, strict=True)]


def sum_of_dots(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([torch.vdot(x.reshape(-1), y.reshape(-1)) for x, y in zip(a, b,
                                                                                 strict=True)]
                       ).sum()


@contextmanager
def left_as_found(view: StepView) -> Iterator[None]:
    """Evaluate the model again without a trace: its buffers (BatchNorm's running statistics)
    and the random number generators are restored afterwards."""
    buffers = {k: v.clone() for k, v in view.model.named_buffers()}
    device = view.params[0].device
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            yield
    finally:
        named = dict(view.model.named_buffers())
        for name, value in buffers.items():
            named[name].copy_(value)


def reseed(view: StepView, seed: int) -> None:
    """The same random draws (dropout masks) for two evaluations: the model's device's
    generator only (torch.manual_seed would also queue every lazy backend's, at a cost)."""
    device = view.params[0].device
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)
    torch.default_generator.manual_seed(seed)


@dataclass
class StepQuality(Quantity):
    """How much of the decrease its slope promised the optimizer's step delivered, on the step's
    own batch (Cockpit's α, Schneider, Dangel & Hennig 2021, read as a ratio). With
    f(s) = L_B(θ_{t−1} + s·Δθ): ρ = (f(1) − f(0))/f'(0) is 1 when the loss is still linear over
    the step (the step is far below the curvature's scale along its own direction), ½ when the
    step lands on the minimum along it, 0 when it lands as high on the far side (the stability
    edge), and negative when it climbs. f'(0) = g·Δθ from the gradient the step used; f(0) and
    f(1) by evaluating the loss again, with the same random draws for both."""

    name: str = "step_quality"
    every: int | None = 10
    traced: bool = True
    _saved: list[torch.Tensor] | None = field(default=None, repr=False)

    def measure(self, view: StepView) -> dict:
        if view.loss_at is None or view.changes is None:
            return {}
        slope = -sum_of_dots(gradients(view), view.changes)  # g·Δθ, with Δθ = −changes
        params = [p.detach() for p in view.params]
        with torch.no_grad(), left_as_found(view):
            if self._saved is None:
                self._saved = [p.clone() for p in params]
            else:
                torch._foreach_copy_(self._saved, params)
            try:
                reseed(view, view.step)
                now = view.loss_at(None)
                torch._foreach_add_(params, view.changes)  # back to θ_{t−1}
                reseed(view, view.step)
                before = view.loss_at(None)
            finally:
                torch._foreach_copy_(params, self._saved)
        if now is None or before is None:
            return {}
        return {"slope": slope, "before": before.reshape(()), "now": now.reshape(())}

    def derive(self, raw: dict, view: StepView) -> dict[str, float]:
        if not raw:
            return {}
        if not raw["slope"] < 0:  # the step went uphill at first order
            return {"step_ratio": -math.inf}
        return {"step_ratio": (raw["now"] - raw["before"]) / raw["slope"]}


@dataclass
class GradientNoise(Quantity):
    """The gradient's signal-to-noise ratio and noise scale, one bias-corrected family (Cockpit's
    norm test and McCandlish et al. 2018's B_simple are the same statistic).

    From per-sample gradients gᵢ (i = 1..B) with mean ḡ: tr Σ̂ = (Σᵢ‖gᵢ‖² − B‖ḡ‖²)/(B − 1),
    ‖G‖² ≈ ‖ḡ‖² − tr Σ̂/B (unbiased); snr = ‖G‖²/tr Σ̂ per sample, batch_snr = B·snr, and the
    noise scale B_simple = tr Σ̂/‖G‖². Per-sample norms come from hooks on Linear and Conv layers,
    for the first `samples` samples of the batch; `noise_coverage` is the share of the model's
    trainable parameters those layers hold, so the evidence says what the SNR speaks for."""

    name: str = "gradient_noise"
    every: int | None = 5
    samples: int = 32
    traced: bool = True

    def measure(self, view: StepView) -> dict:
        caught = view.capture.norms(self.samples)
        if caught is None:
            return {}
        contributions, layers, batch = caught
        index = {id(p): i for i, p in enumerate(view.params)}
        covered = [index[id(p)] for m in layers for p in m.parameters(recurse=False)
                   if p.requires_grad and id(p) in index]
        # sample i's contribution cᵢ to the gradient g = Σᵢ cᵢ is gᵢ/B for a mean loss: the
        # per-sample gradients are B·cᵢ, their mean g (the ratios do not depend on the scale).
        # Under DDP g averages every process's batch: B samples here, B·processes in g; the
        # captured contributions still carry a mixed-precision loss scale that g has shed
        return {"per_sample": contributions.mean() * (batch / view.loss_scale)**2,
                "covered": covered, "squares": view.squares, "batch": batch * view.processes,
                "noise_coverage": sum(view.params[i].numel() for i in covered)
                / sum(p.numel() for p in view.params)}

    def derive(self, raw: dict, view: StepView) -> dict[str, float]:
        if not raw:
            return {}
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


def as_floats(readings: list[dict]) -> list[dict]:
    """The readings with every tensor among them moved off the device in one transfer: a 0-d
    tensor becomes a float, a larger one a list of floats; other values are kept."""
    tensors = {id(v): v for reading in readings for v in reading.values()
               if isinstance(v, torch.Tensor)}
    flat = [t.detach().reshape(-1).float() for t in tensors.values()]
    moved = iter(torch.cat(flat).tolist() if flat else [])
    converted = {key: next(moved) if t.dim() == 0 else [next(moved) for _ in range(t.numel())]
                 for key, t in tensors.items()}
    return [{k: converted[id(v)] if isinstance(v, torch.Tensor) else v for k, v in reading.items()}
            for reading in readings]


def trainable_layers(model: nn.Module) -> dict[str, list[torch.Tensor]]:
    """{module path: its own trainable parameters}, in registration order."""
    return {name or type(model).__name__: params for name, module in model.named_modules()
            if (params := [p for p in module.parameters(recurse=False) if p.requires_grad])}
