"""Test problems for optimisers, DeepOBS style: each gives initial parameters for a batch of
models, a training loss per model on a fresh batch, and a test error per model (lower is
better) with the threshold that counts as solved.

Rotated ill-conditioned quadratics, softmax regression and an MLP on digits, parity at a
moderate d (§2) and the 3-tap convolution of §4's piecewise-linear curves; and Wilson et al.
2017's over-parameterised linear classification (§3.3), on which adaptive methods generalise
worse. Every random draw comes from `ctx.generator(*key)` of the run's context.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from gradfail.data.curves import convolve, curves_of, kink_vectors, relative_errors
from gradfail.data.digits import digits
from gradfail.data.parity import parity_labels, random_signs, random_subsets
from gradfail.nets.batched import mlp_forward, mlp_parameters
from gradfail.nets.deep import expand_models

if TYPE_CHECKING:
    from gradfail.experiment import RunContext


@dataclass
class Problem:
    name: str
    threshold: float
    metric: str
    init: Callable[[int], list[torch.Tensor]]
    loss: Callable[[list[torch.Tensor], torch.Generator], torch.Tensor]
    error: Callable[[list[torch.Tensor]], torch.Tensor]


def quadratic(kappa: float, dim: int, ctx: RunContext) -> Problem:
    """½ xᵀHx, H = Q·diag(λ)·Qᵀ, λ log-spaced 1 … 1/κ, Q a random rotation (so per-coordinate
    methods get no free preconditioning); error f(x)/f(x0), threshold 1e-3."""
    generator = ctx.generator("quadratic", kappa)
    rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator,
                                              device=ctx.device))
    hessian = rotation @ torch.diag(torch.logspace(0, -math.log10(kappa), dim,
                                                   device=ctx.device)) @ rotation.T
    start = torch.randn(dim, generator=generator, device=ctx.device)

    def value(params):
        x = params[0]
        return 0.5 * ((x @ hessian) * x).sum(-1)
    initial = value([start[None]])
    return Problem(f"quadratic κ={kappa:g}", 1e-3, "f(x)/f(x0)",
                   lambda models: [start.expand(models, dim).clone()],
                   lambda params, _: value(params), lambda params: value(params) / initial)


def classifier(name: str, sizes: list[int], threshold: float, batch_size: int,
               ctx: RunContext) -> Problem:
    """Softmax regression (sizes [64, 10]) or a ReLU MLP on digits; error = test error rate."""
    data = digits(ctx.generator("digits"), ctx.device)
    generator = ctx.generator("init", name)

    def init(models):
        return mlp_parameters(models, sizes, generator, ctx.device)

    def loss(params, batches):
        models = params[0].shape[0]
        pick = torch.randint(len(data["train_y"]), (models, batch_size),
                             generator=batches, device=ctx.device)
        logits = mlp_forward(params, data["train_x"][pick])
        return torch.nn.functional.cross_entropy(logits.transpose(1, 2), data["train_y"][pick],
                                                 reduction="none").mean(1)

    def error(params):
        logits = mlp_forward(params, expand_models(data["test_x"], params[0].shape[0]))
        return (logits.argmax(-1) != data["test_y"]).float().mean(1)
    return Problem(name, threshold, "test error", init, loss, error)


def parity(d: int, batch_size: int, ctx: RunContext) -> Problem:
    """§2's parity at d: one ReLU layer of width 10d, hinge loss; error on fresh points."""
    hidden = 10 * d
    subset = random_subsets(1, d, ctx.generator("parity subset"))
    test_x = random_signs((1, 4_096, d), ctx.generator("parity test"))
    test_y = parity_labels(test_x, subset)
    generator = ctx.generator("parity init")

    def net(params, x):
        return mlp_forward(params, x).squeeze(-1)

    def loss(params, batches):
        x = random_signs((params[0].shape[0], batch_size, d), batches)
        return torch.clamp_min(1 - parity_labels(x, subset) * net(params, x), 0).mean(1)

    def error(params):
        return (net(params, test_x.expand(params[0].shape[0], -1, -1)) * test_y <= 0
                ).float().mean(1)
    return Problem(f"parity d={d}", 0.05, "test error",
                   lambda models: mlp_parameters(models, [d, hidden, 1], generator, ctx.device,
                                                 gain=1.0), loss, error)


def convolution(batch_size: int, ctx: RunContext) -> Problem:
    """§4's 3-tap convolution predicting the kinks p of piecewise-linear curves f = Wp (n = 100,
    k = 3, trained on the squared kink error as there); error = relative RMSE of the curve
    W·p̂, threshold 1% (the §4 criterion)."""
    kinks = kink_vectors(10_000, 100, 3, "code", ctx.generator("curves")).float()
    curves = curves_of(kinks.double()).float()
    test_kinks = kink_vectors(500, 100, 3, "code", ctx.generator("test curves"))
    test = curves_of(test_kinks).float()

    def loss(params, batches):
        pick = torch.randint(len(kinks), (params[0].shape[0], batch_size),
                             generator=batches, device=ctx.device)
        return (convolve(curves[pick], params[0]) - kinks[pick]).square().mean((1, 2))

    def error(params):
        f = test.expand(params[0].shape[0], -1, -1)
        return relative_errors(curves_of(convolve(f, params[0])), f)[0]
    return Problem("convolution", 0.01, "relative RMSE",
                   lambda models: [torch.zeros(models, 3, device=ctx.device)], loss, error)


def adaptive_methods_example(n: int, n_test: int, p: float, generator: torch.Generator
                             ) -> tuple[torch.Tensor, ...]:
    """Wilson et al. 2017, §3.3: n training points x_i = (y_i, 1, 1, private features), 1
    unique feature for a positive point, 5 for a negative one, P(y = +1) = p. The n_test test
    points carry only (y, 1, 1): their private features are new, so no method has a weight for
    them. Samples with Σy ≤ 0 are redrawn (positives the majority). Returns x, y, test x, test y.
    """
    while True:
        y = torch.where(torch.rand(n, generator=generator, device=generator.device) < p, 1.0,
                        -1.0)
        if y.sum() > 0:
            break
    widths = torch.where(y > 0, 1, 5)
    x = torch.zeros(n, 3 + int(widths.sum()), device=y.device)
    x[:, 0], x[:, 1:3] = y, 1.0
    offsets = 3 + torch.cumsum(widths, 0) - widths
    for i in range(n):  # n ≤ a few hundred, once per seed
        x[i, offsets[i]: offsets[i] + widths[i]] = 1.0
    test_y = torch.where(torch.rand(n_test, generator=generator, device=generator.device) < p,
                         1.0, -1.0)
    return x, y, torch.stack([test_y, torch.ones_like(test_y), torch.ones_like(test_y)], 1), \
        test_y
