"""Parities of random subsets of ±1 bits (paper §2; the authors' `parity.py`).

Inputs are i.i.d. fair ±1 bits (mean zero, as the paper's code uses), the target subset v* is
uniformly random (each coordinate in with probability ½, so |v*| ~ Bin(d, ½)) unless a size is
fixed, and the label is the product of the selected bits. Fresh data are drawn every step.
"""

from __future__ import annotations

import torch

_BIT_SHIFTS = torch.arange(8, dtype=torch.uint8)


def random_signs(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Fair ±1 float32 bits of `shape`; 64 bits come from each random word (6x cheaper)."""
    device = generator.device
    count = 1
    for size in shape:
        count *= size
    words = torch.randint(-(2**63), 2**63 - 1, (-(-count // 64),), generator=generator,
                          dtype=torch.int64, device=device)
    bytes_ = words.view(torch.uint8)
    bits = (bytes_[:, None] >> _BIT_SHIFTS.to(device)) & 1
    return bits.view(-1)[:count].view(shape).to(torch.float32).mul_(2).sub_(1)


def random_subsets(n: int, d: int, generator: torch.Generator, size: int | None = None
                   ) -> torch.Tensor:
    """`n` target subsets of {0..d-1} as a bool mask (n, d): uniform, or of a fixed size."""
    device = generator.device
    if size is None:
        return torch.rand(n, d, generator=generator, device=device) < 0.5
    order = torch.rand(n, d, generator=generator, device=device).argsort(dim=1)
    return order < size


def parity_labels(x: torch.Tensor, subsets: torch.Tensor) -> torch.Tensor:
    """χ_S(x) = Π_{k∈S} x_k. x: (..., models, batch, d), subsets: (models, d) -> (..., models, batch)."""
    return torch.where(subsets[:, None, :], x, torch.ones((), device=x.device)).prod(-1)
