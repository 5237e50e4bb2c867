"""The fast Walsh–Hadamard transform and the enumeration of {±1}^d in the matching order.

Row i of `sign_cube(d)` is the input x with x_k = (−1)^(bit k of i). Then entry s of
`walsh_hadamard(f)` is Σ_x χ_S(x) f(x), where χ_S(x) = Π_{k∈S} x_k and S = the bits of s:
the transform gives the correlation of f with every parity at once, in d·2^d operations.
"""

from __future__ import annotations

import torch


def sign_cube(d: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """All 2^d points of {±1}^d, shape (2^d, d), in Walsh order."""
    index = torch.arange(2**d, device=device)
    bits = (index[:, None] >> torch.arange(d, device=device)) & 1
    return (1 - 2 * bits).to(dtype)


def walsh_hadamard(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Unnormalised fast Walsh–Hadamard transform of `values` along `dim` (length 2^d)."""
    n = values.shape[dim]
    if n & (n - 1):
        raise ValueError(f"Walsh–Hadamard transform needs a power-of-two length, got {n}")
    source = values.movedim(dim, 0).reshape(n, -1).clone()
    target = torch.empty_like(source)
    half = 1
    while half < n:  # one butterfly stage per bit, ping-ponging between two buffers
        pairs = source.view(n // (2 * half), 2, half, -1)
        out = target.view(n // (2 * half), 2, half, -1)
        torch.add(pairs[:, 0], pairs[:, 1], out=out[:, 0])
        torch.sub(pairs[:, 0], pairs[:, 1], out=out[:, 1])
        source, target = target, source
        half *= 2
    rest = values.movedim(dim, 0).shape[1:]
    return source.reshape(n, *rest).movedim(0, dim)

