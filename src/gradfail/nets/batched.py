"""Models whose weights carry a leading seed axis, so the seeds of a config train as one model.

Summing the seeds' mean losses gives each seed exactly its own gradient, so any element-wise
optimiser (SGD, Adam) stepping the batched parameters is independent training per seed.
"""

from __future__ import annotations

import torch
from torch import nn


def truncated_normal(shape: tuple[int, ...], std: float, generator: torch.Generator,
                     device: torch.device) -> torch.Tensor:
    """TF's truncated normal: N(0, std²) redrawn beyond ±2 std (spec §0: every Affine layer)."""
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
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)


def hinge_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """max(0, 1 − y·score) element-wise, labels in {±1} (the paper's loss throughout)."""
    return torch.clamp_min(1 - labels * scores, 0)


def paper_adam(params, lr: float, betas=(0.9, 0.99), eps: float = 1e-5) -> torch.optim.Adam:
    """Adam with the paper's β1 0.9, β2 0.99, ε 1e-5 (spec §0), fused where torch supports it
    (one pass over the moments instead of several; 8x faster for large sparse-touched W)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, fused=True)
    except (RuntimeError, TypeError):  # an older torch without fused Adam on this device
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps)
