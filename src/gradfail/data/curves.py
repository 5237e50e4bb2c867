"""Piecewise-linear curves and their kink encodings (paper §4.1; the authors' `PWL_fail1.py`).

A curve with k kinks is f(x) = Σ_i a_i·[x − θ_i + 1]_+ on x = 0 … n−1, i.e. f = W p with the
sparse kink vector p (p_θ = a) and the lower-triangular ramp matrix W_xj = [x − j + 1]_+.
Its inverse is the second difference, a convolution with (1, −2, 1) (Lemma 1).

Distributions, all from a seeded generator:
- `code`: what `PWL_fail1.py` trains on: 3 distinct integer kinks in {3 … n−4}, and one of four
  slope patterns, a = successive slope differences from a starting slope of 0;
- `paper`: the paper's: k kinks uniform without replacement in {0 … n−1}, a ~ U[−1, 1];
- `autoencoder_curves`: the autoencoder's data: real kinks θ ~ U(0, n), c ~ U(−1, 1),
  f(x) = Σ c_i·[x − θ_i]_+ (no +1 shift).

And the curves' 3-tap convolution (§4.2): its windows, their whitening C^{−1/2}, the
convolution's prediction and its relative errors, shared by `conditioning` and `optimizers`.
"""

from __future__ import annotations

import torch

from gradfail.errors import ConfigError

SLOPE_PATTERNS = ((1, -1, 1), (1, -2, 1), (-2, 1, -1), (1, -1, 2))  # PWL_fail1.create_data


def ramp_matrix(n: int, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """W with W_xj = max(x − j + 1, 0): f = W p."""
    index = torch.arange(n, device=device)
    return (index[:, None] - index[None, :] + 1).clamp_min(0).to(dtype)


def check_size(n: int, k: int) -> None:
    if k < 1:
        raise ConfigError(f"k = {k}: a curve needs at least one kink")
    if n < 2 * k + 2:
        raise ConfigError(f"n = {n} is too short for k = {k} kinks (needs n ≥ 2k + 2 = {2 * k + 2})")


def kink_vectors(count: int, n: int, k: int, distribution: str, generator: torch.Generator
                 ) -> torch.Tensor:
    """Sparse kink vectors p, (count, n) float64, from the `code` or `paper` distribution."""
    check_size(n, k)
    device = generator.device
    p = torch.zeros(count, n, dtype=torch.float64, device=device)
    if distribution == "paper":
        kinks = torch.rand(count, n, generator=generator, device=device).argsort(1)[:, :k]
        a = torch.rand(count, k, generator=generator, device=device, dtype=torch.float64) * 2 - 1
        return p.scatter_(1, kinks, a)
    if distribution != "code":
        raise ConfigError(f"unknown curve distribution {distribution!r}; choose code or paper")
    if k != 3:
        raise ConfigError("the code's slope patterns are defined for k = 3 only")
    if n < 10:
        raise ConfigError(f"n = {n}: the code's kinks lie in 3..n−4, which needs n ≥ 10")
    inner = torch.rand(count, n - 6, generator=generator, device=device).argsort(1)[:, :3]
    kinks = (inner + 3).sort(1).values
    patterns = torch.tensor(SLOPE_PATTERNS, dtype=torch.float64, device=device)
    slopes = patterns[torch.randint(len(SLOPE_PATTERNS), (count,), generator=generator,
                                    device=device)]
    a = torch.diff(slopes, dim=1, prepend=torch.zeros(count, 1, dtype=torch.float64,
                                                      device=device))
    return p.scatter_(1, kinks, a)


def curves_of(p: torch.Tensor) -> torch.Tensor:
    """f = W p for kink vectors (..., n)."""
    return p @ ramp_matrix(p.shape[-1], p.dtype, p.device).T  # (W p)ᵀ = pᵀ Wᵀ, row-wise


def autoencoder_curves(count: int, n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """The autoencoder's curves: real kinks θ ~ U(0, n), c ~ U(−1, 1), f = Σ c·[x − θ]_+."""
    check_size(n, k)
    device = generator.device
    kinks = torch.rand(count, k, 1, generator=generator, device=device, dtype=torch.float64) * n
    c = torch.rand(count, k, 1, generator=generator, device=device, dtype=torch.float64) * 2 - 1
    x = torch.arange(n, device=device, dtype=torch.float64)
    return (c * (x - kinks).clamp_min(0)).sum(1)


def windows(f: torch.Tensor) -> torch.Tensor:
    """(…, n) -> (…, n−2, 3): (f_{t+2}, f_{t+1}, f_t), the 3-tap convolution's inputs."""
    return torch.stack((f[..., 2:], f[..., 1:-1], f[..., :-2]), dim=-1)


def whitening(f: torch.Tensor) -> torch.Tensor:
    """C^{−1/2} of the 3×3 window second moment C over all windows of the curves (…, N, n).

    In float64: C's condition number is ~1e5–1e6, beyond what float32 sums resolve."""
    w = windows(f.double()).flatten(-3, -2)
    moment = w.transpose(-1, -2) @ w / w.shape[-2]
    values, vectors = torch.linalg.eigh(moment)
    return (vectors @ torch.diag_embed(values.rsqrt()) @ vectors.transpose(-1, -2)).to(f.dtype)


def convolve(f: torch.Tensor, taps: torch.Tensor, transform: torch.Tensor | None = None):
    """p̂_{t+2} = taps · window_t (optionally whitened windows), with p̂_0 = p̂_1 = 0."""
    w = windows(f)
    if transform is not None:
        w = w @ transform[:, None].transpose(-1, -2)  # each window multiplied by C^{−1/2}
    out = (w * taps[:, None, None, :]).sum(-1)
    return torch.nn.functional.pad(out, (2, 0))


def relative_errors(reconstructed: torch.Tensor, f: torch.Tensor,
                    kinks: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """Per seed: mean over curves of RMSE / range, and of the largest |error| / range at the
    kinks (`kinks`: a mask of kink positions; everywhere when None), as gradfail reads Figure 6."""
    scale = (f.amax(-1) - f.amin(-1)).clamp_min(1e-12)
    error = (reconstructed - f).abs()
    at_kinks = error if kinks is None else error * kinks
    return ((error.square().mean(-1).sqrt() / scale).mean(-1),
            (at_kinks.amax(-1) / scale).mean(-1))
