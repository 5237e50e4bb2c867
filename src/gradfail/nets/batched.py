"""Models whose weights carry a leading seed axis, so the seeds of a config train as one model.

Summing the seeds' mean losses gives each seed exactly its own gradient, so any element-wise
optimiser (SGD, Adam) stepping the batched parameters is independent training per seed.
One MLP, two ways to hold it: `BatchedMLP`, a module with the paper code's truncated-normal
init, and `mlp_parameters`, plain tensors with He init (for optimisers that need a parameter
group per setting); both run through `mlp_forward`. Deep nets with batch norm, residuals and
named activations are `gradfail.nets.deep.DeepMLP`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


def truncated_normal(shape: tuple[int, ...], std: float, generator: torch.Generator,
                     device: torch.device) -> torch.Tensor:
    """TF's truncated normal: N(0, std²) redrawn beyond ±2 std (the authors' code: every
    Affine layer)."""
    tensor = torch.empty(shape, device=device)
    return nn.init.trunc_normal_(tensor, 0.0, std, -2 * std, 2 * std, generator=generator)


class BatchedLinear(nn.Module):
    """`n_models` independent affine maps: x (models, batch, in) -> (models, batch, out).

    Weights start truncated-normal with std 1/sqrt(fan_in), biases at zero (the paper's code).
    """

    def __init__(self, n_models: int, n_in: int, n_out: int, generator: torch.Generator,
                 device: torch.device):
        super().__init__()
        std = n_in**-0.5
        self.weight = nn.Parameter(truncated_normal((n_models, n_in, n_out), std, generator, device))
        self.bias = nn.Parameter(torch.zeros(n_models, 1, n_out, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class BatchedMLP(nn.Module):
    """A ReLU MLP per model, `sizes` = [in, hidden..., out], linear output."""

    def __init__(self, n_models: int, sizes: list[int], generator: torch.Generator,
                 device: torch.device):
        super().__init__()
        self.layers = nn.ModuleList(
            BatchedLinear(n_models, n_in, n_out, generator, device)
            for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mlp_forward(list(self.parameters()), x)


def mlp_parameters(n_models: int, sizes: list[int], generator: torch.Generator,
                   device: torch.device, gain: float = 2.0) -> list[torch.Tensor]:
    """[W1, b1, W2, b2, …] as plain tensors with a leading model axis (for optimisers that need
    one parameter group per setting): W ~ N(0, gain/n_in) (He for gain 2), b = 0."""
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False):
        params += [torch.randn(n_models, n_in, n_out, generator=generator, device=device)
                   * math.sqrt(gain / n_in), torch.zeros(n_models, 1, n_out, device=device)]
    return params


def mlp_forward(params: list[torch.Tensor], x: torch.Tensor,
                hidden: Callable[[torch.Tensor], torch.Tensor] = torch.relu) -> torch.Tensor:
    """The MLP of `mlp_parameters`: `hidden` after every layer but the last (linear)."""
    for layer in range(0, len(params), 2):
        x = torch.baddbmm(params[layer + 1], x, params[layer])
        if layer + 2 < len(params):
            x = hidden(x)
    return x


def hinge_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """max(0, 1 − y·score) element-wise, labels in {±1} (the paper's loss throughout)."""
    return torch.clamp_min(1 - labels * scores, 0)


EPSILON_PLACEMENTS = ("tf", "torch")


class TFAdam(torch.optim.Adam):
    """Adam as TensorFlow 1 computes it: ε added to the uncorrected √v_t, the step size carrying
    the bias corrections (Kingma & Ba 2015, §2, the "ε̂" form before Algorithm 1). The paper's
    code (Shalev-Shwartz, Shamir & Shammah 2017) used it; torch adds ε to the corrected √v̂_t.
    The two agree when torch's ε is ε / √(1 − β2^t), which this sets before every step, so
    torch's fused kernel does the arithmetic. Where per-weight gradients are the size of ε
    (the stocks problem at k = 1000: ~1e-5), the placement changes what is learnt. Every
    parameter is assumed to step together (t counts this optimiser's steps)."""

    def __init__(self, params, **options) -> None:
        super().__init__(params, **options)
        self._epsilons = [group["eps"] for group in self.param_groups]
        self._steps = 0

    @torch.no_grad()
    def step(self, closure=None):
        self._steps += 1
        for group, epsilon in zip(self.param_groups, self._epsilons, strict=True):
            group["eps"] = epsilon / math.sqrt(1 - group["betas"][1] ** self._steps)
        return super().step(closure)


def paper_adam(params, lr: float, betas=(0.9, 0.99), eps: float = 1e-5,
               placement: str = "torch") -> torch.optim.Adam:
    """Adam with the paper's β1 0.9, β2 0.99, ε 1e-5 (the authors' code), ε on the corrected
    √v̂ (`placement` "torch") or on the uncorrected √v as the paper's TensorFlow code ("tf"); fused
    where torch supports it (one pass over the moments instead of several; 8x faster for
    large sparse-touched W)."""
    optimiser = {"tf": TFAdam, "torch": torch.optim.Adam}[placement]
    params = list(params)
    try:
        return optimiser(params, lr=lr, betas=betas, eps=eps, fused=True)
    except (RuntimeError, TypeError):  # an older torch without fused Adam on this device
        return optimiser(params, lr=lr, betas=betas, eps=eps)
