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

    def __matmul__(self, vectors: torch.Tensor) -> torch.Tensor:
        """H v for a vector (D,), or for every row of a matrix (k, D) in one batched pass."""
        lead = vectors.shape[:-1]
        if lead:
            try:
                return self._products(vectors, lead)
            except RuntimeError:  # an op or hook without a batching rule: one row at a time
                return torch.stack([self @ vector for vector in vectors])
        return self._products(vectors, lead)

    def _products(self, vectors: torch.Tensor, lead: torch.Size,
                  out: torch.Tensor | None = None) -> torch.Tensor:
        pieces = torch.split(vectors, [p.numel() for p in self.params], dim=-1)
        hv = torch.autograd.grad(self.grads, self.params, [pieces[i].reshape(
            *lead, *self.params[i].shape) for i in self.graded], retain_graph=True,
            allow_unused=True, is_grads_batched=bool(lead)) if self.grads else \
            [None] * len(self.params)
        return torch.cat([(p.new_zeros(*lead, p.numel()) if h is None else h.reshape(*lead, -1))
                          for h, p in zip(hv, self.params, strict=True)], -1, out=out)

    def product(self, vector: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """H v for one vector (D,), written into `out` (D,): a buffer used again and again
        costs no fresh pages (on a CPU, a new large tensor is a page fault per 4 KiB)."""
        return self._products(vector, vector.shape[:-1], out)


class Orthogonality:
    """Simon's estimate of how far the Lanczos vectors have drifted from orthogonal (Simon 1984,
    "The Lanczos algorithm with partial reorthogonalization", Math. Comp. 42, §4): ω_jk ≈ q_jᵀq_k
    follows the three-term recurrence of the vectors themselves, with a rounding term each step,
    at a cost in scalars only. A new vector is reorthogonalised against all earlier ones where
    some |ω| passes √ε (and the vector after it too, whose recurrence reads the old one); below
    that, the Ritz values are as accurate as with full reorthogonalisation (semiorthogonality,
    Simon's Theorem 4)."""

    def __init__(self, eps: float):
        self.eps, self.limit = eps, math.sqrt(eps)
        self.rows = [np.ones(1)]  # ω_{j,k} for k ≤ j, one row per vector
        self.norm = 0.0  # an estimate of ‖H‖: the largest |α| + β + β seen
        self.again = False  # the previous vector was reorthogonalised: so is this one

    def extend(self, alphas: list[float], betas: list[float]) -> bool:
        """Add the row of the vector q_{j+1} = w / β_{j+1} (β_{j+1} = betas[-1], α_j =
        alphas[-1]); True when it must be reorthogonalised before use."""
        j, beta = len(alphas) - 1, betas[-1]
        self.norm = max(self.norm, abs(alphas[-1]) + beta + (betas[-2] if j else 0.0))
        noise = self.eps * self.norm / max(beta, np.finfo(float).tiny)
        row, last = self.rows[j], self.rows[j - 1] if j else np.zeros(0)
        new = np.empty(j + 2)
        for k in range(j):
            new[k] = (betas[k] * row[k + 1] + (alphas[k] - alphas[j]) * row[k]
                      + (betas[k - 1] * row[k - 1] if k else 0.0)
                      - betas[j - 1] * last[k]) / beta
            new[k] += math.copysign(noise, new[k])
        new[j], new[j + 1] = noise, 1.0  # q_{j+1} is made orthogonal to q_j explicitly
        self.rows.append(new)
        due = self.again or j > 0 and float(np.abs(new[:j]).max()) > self.limit
        self.again = due and not self.again
        return due

    def reset(self) -> None:
        """The newest vector was just reorthogonalised: it is orthogonal to working precision."""
        self.rows[-1][:-1] = self.eps


class Workspace:
    """The Lanczos vectors' memory, kept from one measurement to the next: on a CPU a fresh
    (steps, D) tensor costs a page fault per 4 KiB on its first write (31 ms of a 53 MB basis
    against 3 ms to fill a kept one, measured on a 1.3M-parameter MLP); the peak memory is the
    same."""

    def __init__(self):
        self.buffer: torch.Tensor | None = None

    def rows(self, count: int, like: torch.Tensor) -> torch.Tensor:
        """A (count, D) tensor shaped and placed like `like` (D,), its contents undefined."""
        b = self.buffer
        if b is None or b.shape != (count, like.numel()) or b.dtype != like.dtype or \
                b.device != like.device:
            self.buffer = b = like.new_empty(count, like.numel())
        return b


def lanczos(hessian: Hessian, steps: int, start: torch.Tensor,
            workspace: Workspace | None = None) -> tuple[float, float, float]:
    """(smallest Ritz value, largest Ritz value, startᵀ H start) after `steps` Lanczos steps (the
    three-term recurrence, Golub & Van Loan, Matrix Computations, §10.1, with Simon's partial
    reorthogonalisation: `Orthogonality`): a fixed budget of Hessian-vector products. The Ritz
    values lie inside [λ_min, λ_max] and converge to both ends, the largest first; with
    steps = dim they are exact. Over the doctor's 10 steps the vectors stay orthogonal to
    √ε on networks' Hessians, so the O(steps · D) reorthogonalisation is rarely paid."""
    steps = min(steps, hessian.dim)
    rows = (workspace or Workspace()).rows(steps + 1, start)  # each written before it is read
    basis, w = rows[:steps], rows[steps]
    torch.div(start, start.norm(), out=basis[0])
    orthogonality = Orthogonality(torch.finfo(start.dtype).eps)
    alphas, betas = [], []
    for j in range(steps):
        hessian.product(basis[j], out=w)
        alphas.append(float(torch.dot(basis[j], w)))  # α_j = q_jᵀ H q_j
        if not math.isfinite(alphas[-1]):
            return math.nan, math.nan, math.nan
        w.add_(basis[j], alpha=-alphas[-1])  # the three-term recurrence
        if j:
            w.add_(basis[j - 1], alpha=-betas[-1])
        beta = float(w.norm())
        if j == steps - 1 or beta < 1e-10 * max(1.0, abs(alphas[-1])):
            break
        if orthogonality.extend(alphas, [*betas, beta]):
            found = basis[:j + 1]
            w.addmv_(found.T, found @ w, alpha=-1)  # one classical Gram-Schmidt pass
            beta = float(w.norm())
            orthogonality.reset()
        betas.append(beta)
        torch.div(w, beta, out=basis[j + 1])
    ritz = scipy.linalg.eigh_tridiagonal(np.array(alphas), np.array(betas[:len(alphas) - 1]),
                                         eigvals_only=True)
    return float(ritz[0]), float(ritz[-1]), alphas[0] * float(start.square().sum())


def rademacher(hessian: Hessian, generator: torch.Generator, count: int | None = None
               ) -> torch.Tensor:
    """A random ±1 vector (D,), or `count` of them (count, D); eight signs from each random
    byte (the generator's draws are the cost on a CPU)."""
    like = hessian.params[0]
    device = generator.device
    shape = (count,) if count is not None else ()
    bytes_ = torch.randint(0, 256, (*shape, (hessian.dim + 7) // 8), generator=generator,
                           device=device, dtype=torch.uint8)
    bits = (bytes_[..., None] >> torch.arange(8, device=device, dtype=torch.uint8)) & 1
    return (2 * bits.flatten(-2)[..., :hessian.dim].to(like.dtype) - 1).to(like.device)


def hutchinson_trace(hessian: Hessian, probes: int, generator: torch.Generator,
                     samples: tuple[float, ...] = ()) -> tuple[float, float]:
    """(trace estimate, its standard error): the mean of vᵀHv over `probes` Rademacher vectors
    v (their products in one batched pass), with any `samples` of vᵀHv already in hand."""
    probed = rademacher(hessian, generator, probes)
    samples = [*samples, *(probed * (hessian @ probed)).sum(1).tolist()]
    spread = float(np.std(samples, ddof=1)) if len(samples) > 1 else math.nan
    return float(np.mean(samples)), spread / math.sqrt(len(samples))
