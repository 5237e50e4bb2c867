"""Curvature of a loss at the current parameters, from Hessian-vector products only.

Both ends of the spectrum by Lanczos with a fixed budget of products (the largest and smallest
*algebraic* Ritz values, so negative curvature is seen, unlike power iteration; the tridiagonal
eigenproblem by scipy), and the trace by Hutchinson's estimator with Rademacher probes and its
standard error. A fixed budget is what lets the doctor promise its overhead.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.linalg
import torch


class Hessian:
    """The Hessian of `closure()` w.r.t. `params`, as an operator on flat vectors."""

    def __init__(self, closure: Callable[[], torch.Tensor], params: list[torch.Tensor]):
        self.params = params
        with torch.enable_grad():
            grads = torch.autograd.grad(closure(), params, create_graph=True, allow_unused=True)
        # a gradient with no graph (a flat link, an unused parameter) has zero curvature
        self.graded = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
        self.grads = [grads[i] for i in self.graded]
        self.dim = sum(p.numel() for p in params)
        self.products = 0

    def __matmul__(self, vector: torch.Tensor) -> torch.Tensor:
        pieces = list(torch.split(vector, [p.numel() for p in self.params]))
        self.products += 1
        hv = torch.autograd.grad(self.grads, self.params, [pieces[i].view_as(self.params[i])
                                                           for i in self.graded],
                                 retain_graph=True, allow_unused=True) if self.grads else \
            [None] * len(self.params)
        return torch.cat([(torch.zeros_like(p) if h is None else h).flatten()
                          for h, p in zip(hv, self.params, strict=True)])


def lanczos(hessian: Hessian, steps: int, start: torch.Tensor) -> tuple[float, float, float]:
    """(smallest Ritz value, largest Ritz value, startᵀ H start) after `steps` Lanczos steps with
    full reorthogonalisation: a fixed budget of Hessian-vector products. The Ritz values lie
    inside [λ_min, λ_max] and converge to both ends, the largest first; with steps = dim they
    are exact."""
    steps = min(steps, hessian.dim)
    basis = [start / start.norm()]
    alphas, betas = [], []
    for j in range(steps):
        w = hessian @ basis[-1]
        alphas.append(float(basis[-1] @ w))
        if not math.isfinite(alphas[-1]):
            return math.nan, math.nan, math.nan
        stacked = torch.stack(basis)
        w = w - stacked.T @ (stacked @ w)
        w = w - stacked.T @ (stacked @ w)  # twice is enough (Kahan)
        beta = float(w.norm())
        if j == steps - 1 or beta < 1e-10 * max(1.0, abs(alphas[-1])):
            break
        betas.append(beta)
        basis.append(w / beta)
    ritz = scipy.linalg.eigh_tridiagonal(np.array(alphas), np.array(betas[:len(alphas) - 1]),
                                         eigvals_only=True)
    return float(ritz[0]), float(ritz[-1]), alphas[0] * float(start.square().sum())


def rademacher(hessian: Hessian, generator: torch.Generator) -> torch.Tensor:
    like = hessian.params[0]
    v = torch.randint(0, 2, (hessian.dim,), generator=generator, device=generator.device)
    return (2 * v - 1).to(like.dtype).to(like.device)


def hutchinson_trace(hessian: Hessian, probes: int, generator: torch.Generator,
                     samples: tuple[float, ...] = ()) -> tuple[float, float]:
    """(trace estimate, its standard error): the mean of vᵀHv over `probes` Rademacher vectors
    v, with any `samples` of vᵀHv already in hand."""
    samples = list(samples)
    for _ in range(probes):
        v = rademacher(hessian, generator)
        samples.append(float(v @ (hessian @ v)))
    probes = len(samples)
    spread = float(np.std(samples, ddof=1)) if probes > 1 else math.nan
    return float(np.mean(samples)), spread / math.sqrt(probes)
