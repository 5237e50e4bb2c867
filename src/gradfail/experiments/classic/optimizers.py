"""Optimiser choice, measured the way optimiser benchmarks measure it.

DeepOBS (Schneider, Balles & Hennig 2019): per problem, the best final performance, the steps to
a threshold, and the sensitivity to the learning rate; Schmidt, Schneider & Hennig 2021 ("no
optimiser dominates"); spec anchors B7–B8. SGD, momentum, Nesterov, Adagrad, RMSprop, Adam and
AdamW run over one log grid of learning rates on a set of problems: rotated ill-conditioned
quadratics (condition number swept), logistic regression and an MLP on digits, and two of
gradfail's own failure problems (parity at d = 10, the 3-tap convolution of §4's
piecewise-linear curves). The grid × seeds of an optimiser train as one batched model, one
parameter group per learning rate, so every update is torch's own.

Wilson et al. 2017's over-parameterised linear classification is included and checked: every
method fits the training set, but the adaptive ones converge to w ∝ sign(Xᵀy) and label every
test point positive (test error 1 − p), where gradient descent finds the max-margin-like
solution (test error 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt, field_validator

from gradfail.data.curves import convolve, curves_of, kink_vectors, relative_errors
from gradfail.data.digits import digits
from gradfail.data.parity import parity_labels, random_signs, random_subsets
from gradfail.errors import ConfigError
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.nets.deep import expand_models, mlp_forward, mlp_parameters
from gradfail.plotting import log_ticks, new_figure, new_grid

OPTIMIZERS: dict[str, Callable[[list[dict]], torch.optim.Optimizer]] = {
    "sgd": lambda groups: torch.optim.SGD(groups),
    "momentum": lambda groups: torch.optim.SGD(groups, momentum=0.9),
    "nesterov": lambda groups: torch.optim.SGD(groups, momentum=0.9, nesterov=True),
    "adagrad": lambda groups: torch.optim.Adagrad(groups),
    "rmsprop": lambda groups: torch.optim.RMSprop(groups),
    "adam": lambda groups: torch.optim.Adam(groups),
    "adamw": lambda groups: torch.optim.AdamW(groups, weight_decay=0.01),
}
ADAPTIVE = ("adagrad", "rmsprop", "adam")
PROBLEMS = ("quadratic", "logistic", "mlp", "parity", "convolution")


def require_optimizers(names: list[str]) -> list[str]:
    for name in names:
        if name not in OPTIMIZERS:
            raise ConfigError(f"unknown optimiser {name!r}; choose from {', '.join(OPTIMIZERS)}")
    return names


class OptimizersConfig(Config):
    """Problem sizes are ours (DeepOBS's problems need downloads); the metrics are theirs."""

    optimizers: list[str] = Field(list(OPTIMIZERS), min_length=1)
    lrs: list[PositiveFloat] = Field([10.0**e for e in range(-5, 1)] + [3.0], min_length=2,
                                     description="the learning-rate grid (log spaced)")
    problems: list[str] = Field(list(PROBLEMS), min_length=1)
    condition_numbers: list[PositiveFloat] = Field([10, 100, 1_000], min_length=1)
    quadratic_dim: PositiveInt = 50
    steps: PositiveInt = Field(2_000, description="steps per run on every problem")
    batch_size: PositiveInt = 64
    eval_every: PositiveInt = 50
    parity_d: PositiveInt = Field(10, description="parity at a moderate d (§2)")
    wilson_points: PositiveInt = Field(100, description="training points (Wilson et al. §3.3)")
    wilson_p: list[float] = Field([0.55, 0.75], min_length=1, description="P(y = +1)")
    wilson_steps: PositiveInt = Field(20_000)
    wilson_test: PositiveInt = Field(2_000)

    @field_validator("optimizers")
    @classmethod
    def _optimizers(cls, names: list[str]) -> list[str]:
        return require_optimizers(names)

    @field_validator("problems")
    @classmethod
    def _problems(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in PROBLEMS:
                raise ValueError(f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)}")
        return names

    @field_validator("lrs")
    @classmethod
    def _grid(cls, lrs: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(lrs, lrs[1:], strict=False)):
            raise ValueError("the learning-rate grid must be strictly increasing")
        return lrs

    @field_validator("wilson_p")
    @classmethod
    def _p(cls, ps: list[float]) -> list[float]:
        if any(not 0.5 < p < 1 for p in ps):
            raise ValueError("wilson_p values must lie in (0.5, 1): positives are the majority")
        return ps


# --------------------------------------------------------------------------------------------
# The problems. Each gives initial parameters (models, ...), a training loss per model on a
# fresh batch, and a test error per model (lower is better) with its threshold.


@dataclass
class Problem:
    name: str
    threshold: float
    metric: str
    init: Callable[[int], list[torch.Tensor]]
    loss: Callable[[list[torch.Tensor], torch.Generator], torch.Tensor]
    error: Callable[[list[torch.Tensor]], torch.Tensor]


def quadratic(config: OptimizersConfig, kappa: float, ctx: RunContext) -> Problem:
    """½ xᵀHx, H = Q·diag(λ)·Qᵀ, λ log-spaced 1 … 1/κ, Q a random rotation (so per-coordinate
    methods get no free preconditioning); error f(x)/f(x0), threshold 1e-3."""
    generator = ctx.generator("quadratic", kappa)
    n = config.quadratic_dim
    rotation, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, device=ctx.device))
    hessian = rotation @ torch.diag(torch.logspace(0, -math.log10(kappa), n,
                                                   device=ctx.device)) @ rotation.T
    start = torch.randn(n, generator=generator, device=ctx.device)

    def value(params):
        x = params[0]
        return 0.5 * ((x @ hessian) * x).sum(-1)
    initial = value([start[None]])
    return Problem(f"quadratic κ={kappa:g}", 1e-3, "f(x)/f(x0)",
                   lambda models: [start.expand(models, n).clone()],
                   lambda params, _: value(params), lambda params: value(params) / initial)


def classifier(name: str, sizes: list[int], threshold: float, config: OptimizersConfig,
               ctx: RunContext) -> Problem:
    """Softmax regression (sizes [64, 10]) or a ReLU MLP on digits; error = test error rate."""
    data = digits(ctx.generator("digits"), ctx.device)
    generator = ctx.generator("init", name)

    def init(models):
        return mlp_parameters(models, sizes, generator, ctx.device)

    def loss(params, batches):
        models = params[0].shape[0]
        pick = torch.randint(len(data["train_y"]), (models, config.batch_size),
                             generator=batches, device=ctx.device)
        logits = mlp_forward(params, data["train_x"][pick])
        return torch.nn.functional.cross_entropy(logits.transpose(1, 2), data["train_y"][pick],
                                                 reduction="none").mean(1)

    def error(params):
        logits = mlp_forward(params, expand_models(data["test_x"], params[0].shape[0]))
        return (logits.argmax(-1) != data["test_y"]).float().mean(1)
    return Problem(name, threshold, "test error", init, loss, error)


def parity(config: OptimizersConfig, ctx: RunContext) -> Problem:
    """§2's parity at d: one ReLU layer of width 10d, hinge loss; error on fresh points."""
    d, hidden = config.parity_d, 10 * config.parity_d
    subset = random_subsets(1, d, ctx.generator("parity subset"))
    test_x = random_signs((1, 4_096, d), ctx.generator("parity test"))
    test_y = parity_labels(test_x, subset)
    generator = ctx.generator("parity init")

    def net(params, x):
        return mlp_forward(params, x).squeeze(-1)

    def loss(params, batches):
        x = random_signs((params[0].shape[0], config.batch_size, d), batches)
        return torch.clamp_min(1 - parity_labels(x, subset) * net(params, x), 0).mean(1)

    def error(params):
        return (net(params, test_x.expand(params[0].shape[0], -1, -1)) * test_y <= 0
                ).float().mean(1)
    return Problem(f"parity d={d}", 0.05, "test error",
                   lambda models: mlp_parameters(models, [d, hidden, 1], generator, ctx.device,
                                                 gain=1.0), loss, error)


def convolution(config: OptimizersConfig, ctx: RunContext) -> Problem:
    """§4's 3-tap convolution predicting the kinks p of piecewise-linear curves f = Wp (n = 100,
    k = 3, trained on the squared kink error as there); error = relative RMSE of the curve
    W·p̂, threshold 1% (the §4 criterion)."""
    kinks = kink_vectors(10_000, 100, 3, "code", ctx.generator("curves")).float()
    curves = curves_of(kinks.double()).float()
    test_kinks = kink_vectors(500, 100, 3, "code", ctx.generator("test curves"))
    test = curves_of(test_kinks).float()

    def loss(params, batches):
        pick = torch.randint(len(kinks), (params[0].shape[0], config.batch_size),
                             generator=batches, device=ctx.device)
        return (convolve(curves[pick], params[0]) - kinks[pick]).square().mean((1, 2))

    def error(params):
        f = test.expand(params[0].shape[0], -1, -1)
        return relative_errors(curves_of(convolve(f, params[0])), f)[0]
    return Problem("convolution", 0.01, "relative RMSE",
                   lambda models: [torch.zeros(models, 3, device=ctx.device)], loss, error)


def problems(config: OptimizersConfig, ctx: RunContext) -> list[Problem]:
    build = {
        "quadratic": lambda: [quadratic(config, kappa, ctx) for kappa in config.condition_numbers],
        "logistic": lambda: [classifier("logistic", [64, 10], 0.08, config, ctx)],
        "mlp": lambda: [classifier("mlp", [64, 128, 128, 10], 0.05, config, ctx)],
        "parity": lambda: [parity(config, ctx)],
        "convolution": lambda: [convolution(config, ctx)],
    }
    return [problem for name in config.problems for problem in build[name]()]


# --------------------------------------------------------------------------------------------
# One optimiser on one problem: the whole lr grid × seeds as one batch of models.


def sweep(config: OptimizersConfig, problem: Problem, optimizer: str, ctx: RunContext) -> dict:
    """Error curves (lrs, seeds, evals). Each lr is one parameter group of (seeds, ...)
    tensors; the forward pass concatenates them, so one backward pass serves the grid."""
    lrs, seeds = config.lrs, ctx.n_seeds
    start = problem.init(seeds)
    groups = [[tensor.clone().requires_grad_(True) for tensor in start] for _ in lrs]
    optimiser = OPTIMIZERS[optimizer]([{"params": g, "lr": lr} for g, lr in zip(groups, lrs,
                                                                                   strict=True)])
    batches = ctx.generator("batches", problem.name, optimizer)
    steps, errors = [], []
    with ctx.track(f"optimizers: {optimizer} on {problem.name}", config.steps) as advance:
        for step in range(config.steps + 1):
            params = [torch.cat(parts) for parts in zip(*groups, strict=True)]
            if step % config.eval_every == 0 or step == config.steps:
                with torch.no_grad():
                    errors.append(problem.error(params).reshape(len(lrs), seeds))
                steps.append(step)
            if step == config.steps:
                break
            loss = problem.loss(params, batches)
            optimiser.zero_grad(set_to_none=True)
            torch.nan_to_num(loss, nan=0.0, posinf=0.0).sum().backward()
            optimiser.step()
            advance(1)
    curves = torch.stack(errors, -1).cpu().numpy()
    curves[~np.isfinite(curves)] = np.inf  # a diverged run has the worst error
    return {"problem": problem.name, "optimizer": optimizer, "steps": steps,
            "errors": curves, "threshold": problem.threshold, "metric": problem.metric}


def summary(run: dict, lrs: list[float]) -> dict:
    """DeepOBS's three numbers: best final error (median over seeds, best lr), steps to the
    threshold at the fastest lr, and how many of the grid's lrs end at or below it."""
    errors = np.asarray(run["errors"], dtype=float)
    final = np.median(errors[:, :, -1], axis=1)
    below = np.median(errors, axis=1) <= run["threshold"]  # (lrs, evals)
    first = np.where(below.any(1), np.asarray(run["steps"])[below.argmax(1)], np.inf)
    return {"best_final": float(final.min()), "best_lr": lrs[int(final.argmin())],
            "steps_to_threshold": float(first.min()),
            "lrs_reaching": int((final <= run["threshold"]).sum())}


# --------------------------------------------------------------------------------------------
# Wilson et al. 2017, §3.3: adaptive methods on an over-parameterised linear problem.


def adaptive_methods_example(config: OptimizersConfig, p: float, generator: torch.Generator
                ) -> tuple[torch.Tensor, ...]:
    """x_i = (y_i, 1, 1, private features): 1 unique feature for a positive point, 5 for a
    negative one. Test points carry only (y, 1, 1): their private features are new, so no
    method has a weight for them. Samples with Σy ≤ 0 are redrawn (positives the majority)."""
    n = config.wilson_points
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
    test_y = torch.where(torch.rand(config.wilson_test, generator=generator,
                                    device=generator.device) < p, 1.0, -1.0)
    return x, y, torch.stack([test_y, torch.ones_like(test_y), torch.ones_like(test_y)], 1), \
        test_y


WILSON_LRS = {"sgd": 0.5, "adagrad": 0.1, "rmsprop": 1e-3, "adam": 1e-3}  # spec B7


def run_adaptive_methods_example(config: OptimizersConfig, ctx: RunContext) -> dict:
    """Full-batch least squares from w = 0 with the spec's learning rates; per (p, seed) the
    training loss and training and test error of each method."""
    out: dict = {"p": config.wilson_p, "lrs": WILSON_LRS}
    generator = ctx.generator("wilson")
    problems_ = [adaptive_methods_example(config, p, generator) for p in config.wilson_p
                 for _ in range(ctx.n_seeds)]
    width = max(x.shape[1] for x, *_ in problems_)
    x = torch.stack([torch.nn.functional.pad(x, (0, width - x.shape[1])) for x, *_ in problems_])
    y = torch.stack([y for _, y, *_ in problems_])
    test_x = torch.stack([t for *_, t, _ in problems_])
    test_y = torch.stack([t for *_, t in problems_])
    with ctx.track("optimizers: Wilson et al.", len(WILSON_LRS) * config.wilson_steps) as advance:
        for name, lr in WILSON_LRS.items():
            w = torch.zeros(len(problems_), width, 1, device=ctx.device, requires_grad=True)
            optimiser = OPTIMIZERS[name]([{"params": [w], "lr": lr}])
            for _ in range(config.wilson_steps):
                loss = 0.5 * (x @ w - y[..., None]).square().mean((1, 2))
                optimiser.zero_grad(set_to_none=True)
                loss.sum().backward()
                optimiser.step()
                advance(1)
            with torch.no_grad():
                train_error = ((x @ w).squeeze(-1) * y <= 0).float().mean(1)
                test_error = ((test_x @ w[:, :3]).squeeze(-1) * test_y <= 0).float().mean(1)
            shape = (len(config.wilson_p), ctx.n_seeds)
            out[name] = {"train_loss": loss.detach().reshape(shape),
                         "train_error": train_error.reshape(shape),
                         "test_error": test_error.reshape(shape)}
    return out


def run(config: OptimizersConfig, ctx: RunContext) -> dict:
    sweeps = []
    for problem in problems(config, ctx):
        for optimizer in config.optimizers:
            sweeps.append(ctx.part(f"{optimizer} on {problem.name}",
                                   lambda p=problem, o=optimizer: sweep(config, p, o, ctx)))
    return {"sweeps": sweeps, "wilson": ctx.part("wilson", lambda: run_adaptive_methods_example(config, ctx))}


# --------------------------------------------------------------------------------------------
# Claims: measured effects with their size, beside the published statement or the folklore.


def summaries(config: OptimizersConfig, result: dict) -> dict[str, dict[str, dict]]:
    """{problem: {optimizer: summary}}."""
    out: dict[str, dict[str, dict]] = {}
    for run in result["sweeps"]:
        out.setdefault(run["problem"], {})[run["optimizer"]] = summary(run, config.lrs)
    return out


def check_adaptive_methods_example(config: OptimizersConfig, result: dict) -> Check:
    found, holds, parts = result["wilson"], True, []
    for i, p in enumerate(config.wilson_p):
        gd = np.asarray(found["sgd"]["test_error"])[i]
        slack = 3 * math.sqrt(p * (1 - p) / config.wilson_test)  # 3 binomial standard errors
        holds &= bool(gd.max() <= 0.05)
        adaptive = []
        for name in ADAPTIVE:
            error = np.asarray(found[name]["test_error"])[i]
            holds &= bool(np.abs(error - (1 - p)).max() <= slack)
            adaptive.append(f"{name} {error.mean():.3f}")
        fitted = all(np.asarray(found[m]["train_error"])[i].max() == 0 for m in WILSON_LRS)
        holds &= fitted
        parts.append(f"p={p}: GD {gd.mean():.3f}, " + ", ".join(adaptive)
                     + f" (1 − p = {1 - p:.2f} ± {slack:.3f}); train error 0 for all: {fitted}")
    return Check.judge(holds, None, "; ".join(parts))


def fastest(by_optimizer: dict[str, dict]) -> str | None:
    """The optimiser with the fewest steps to the threshold, ties (steps are measured every
    eval_every) broken by the best final error; None when none reaches it."""
    name = min(by_optimizer, key=lambda o: (by_optimizer[o]["steps_to_threshold"],
                                            by_optimizer[o]["best_final"]))
    return name if math.isfinite(by_optimizer[name]["steps_to_threshold"]) else None


def check_no_winner(config: OptimizersConfig, result: dict) -> Check:
    winners = {problem: winner for problem, by_optimizer in summaries(config, result).items()
               if (winner := fastest(by_optimizer)) is not None}
    if len(winners) < 2:
        return Check.not_checked(None, "fewer than two problems had a threshold reached")
    detail = "fastest to threshold: " + ", ".join(f"{p}: {w}" for p, w in winners.items())
    return Check.judge(len(set(winners.values())) >= 2, float(len(set(winners.values()))),
                       detail)


def check_adam_robust(config: OptimizersConfig, result: dict) -> Check:
    if not {"adam", "sgd"} <= set(config.optimizers):
        return Check.not_checked(None, "needs adam and sgd")
    widths = {problem: (found["adam"]["lrs_reaching"], found["sgd"]["lrs_reaching"])
              for problem, found in summaries(config, result).items()}
    wider = sum(adam >= sgd for adam, sgd in widths.values())
    difference = np.array([adam - sgd for adam, sgd in widths.values()])
    return Check.judge(wider > len(widths) / 2, float(difference.mean()),
                       f"of {len(config.lrs)} grid lrs, those ending at the threshold, adam vs "
                       "sgd: " + ", ".join(f"{p}: {a} vs {s}" for p, (a, s) in widths.items())
                       + f"; mean difference {difference.mean():+.2f} ± "
                       f"{difference.std(ddof=1) / math.sqrt(len(difference)) if len(difference) > 1 else 0:.2f} (s.e.)")


def check_momentum(config: OptimizersConfig, result: dict) -> Check:
    if not {"momentum", "sgd"} <= set(config.optimizers) or "quadratic" not in config.problems:
        return Check.not_checked(None, "needs sgd, momentum and the quadratic")
    found = summaries(config, result)
    kappas = config.condition_numbers
    steps = {name: [found[f"quadratic κ={k:g}"][name]["steps_to_threshold"] for k in kappas]
             for name in ("sgd", "momentum")}
    hardest = steps["sgd"][-1], steps["momentum"][-1]
    detail = "steps to f/f0 ≤ 1e-3 at the best lr, by κ " + str([f"{k:g}" for k in kappas]) + \
        ": " + "; ".join(f"{n} " + ", ".join(f"{s:,.0f}" for s in v) for n, v in steps.items())
    if not math.isfinite(hardest[1]):
        return Check.judge(False, None, detail)
    return Check.judge(hardest[1] < hardest[0], hardest[0] / hardest[1], detail)


CLAIMS = (
    Claim("adaptive methods generalise worse (Wilson)", "on over-parameterised linear "
          "classification, GD reaches test error 0 and Adagrad, RMSprop, Adam reach 1 − p "
          "(Wilson et al. 2017, §3.3; spec B7: 0.45 at p = 0.55)",
          "GD test error ≤ 0.05; adaptive test error within 3 binomial s.e. of 1 − p; all fit "
          "the training set", check_adaptive_methods_example),
    Claim("no optimiser dominates", "no method clearly dominates across problems (Schmidt, "
          "Schneider & Hennig 2021)", "at least two different optimisers are fastest to the "
          "threshold on some problem", check_no_winner),
    Claim("Adam is less sensitive to its lr", "folklore: Adam works over a wider range of "
          "learning rates than SGD", "adam has at least as many grid lrs reaching the "
          "threshold as sgd on most problems", check_adam_robust),
    Claim("momentum helps when ill-conditioned", "heavy-ball momentum needs ~√κ steps where GD "
          "needs ~κ (Polyak 1964)", "fewer steps than SGD to f/f0 ≤ 1e-3 at the largest κ, "
          "each at its best lr", check_momentum),
)


# --------------------------------------------------------------------------------------------
# Figures: DeepOBS-style sensitivity and learning curves, κ sweep, Wilson's example.


def figures(config: OptimizersConfig, result: dict) -> dict:
    by_problem: dict[str, list[dict]] = {}
    for run in result["sweeps"]:
        by_problem.setdefault(run["problem"], []).append(run)
    columns = 3
    rows = -(-len(by_problem) // columns)
    fig1, grid = new_grid(rows, columns, width=4.0, height=3.0)
    fig2, grid2 = new_grid(rows, columns, width=4.0, height=3.0)
    for index, (problem, runs) in enumerate(by_problem.items()):
        ax, ax2 = grid[index // columns][index % columns], grid2[index // columns][index % columns]
        for run in runs:
            errors = np.asarray(run["errors"], dtype=float)
            final = np.median(errors[:, :, -1], axis=1)
            line = ax.plot(config.lrs, np.clip(final, 1e-12, 1e3), "o-", ms=3,
                           label=run["optimizer"])[0]
            best = int(np.argmin(final))
            ax2.plot(run["steps"], np.clip(np.median(errors[best], axis=0), 1e-12, 1e3),
                     color=line.get_color(),
                     label=f"{run['optimizer']} (lr {config.lrs[best]:g})")
        for axis in (ax, ax2):
            axis.axhline(runs[0]["threshold"], color="black", ls=":", lw=1)
            axis.set(yscale="log", title=problem, ylabel=runs[0]["metric"])
        log_ticks(ax, config.lrs)
        ax.set_xlabel("learning rate")
        ax2.set_xlabel("step")
        ax2.legend(fontsize=6)
    for index in range(len(by_problem), rows * columns):
        grid[index // columns][index % columns].axis("off")
        grid2[index // columns][index % columns].axis("off")
    grid[0][0].legend(fontsize=7)
    fig1.suptitle("Final error against learning rate (median over seeds; dotted: threshold)")
    fig2.suptitle("Learning curves at each optimiser's best learning rate (median over seeds)")

    found = summaries(config, result)
    figs = {"summary_table": summary_table(config, found), "lr_sensitivity": fig1,
            "learning_curves": fig2}
    kappas = [k for k in config.condition_numbers if f"quadratic κ={k:g}" in found]
    if len(kappas) > 1:
        fig3, ax = new_figure()
        for name in config.optimizers:
            steps = [found[f"quadratic κ={k:g}"][name]["steps_to_threshold"] for k in kappas]
            ax.plot(kappas, np.where(np.isfinite(steps), steps, np.nan), "o-", label=name)
        ax.set(yscale="log", xlabel="condition number κ", ylabel="steps to f/f0 ≤ 1e-3",
               title="Ill-conditioned quadratic: steps at the best lr")
        log_ticks(ax, kappas)
        ax.legend(fontsize=7)
        figs["condition_number"] = fig3

    wilson_result = result["wilson"]
    fig4, ax = new_figure()
    width = 0.8 / len(WILSON_LRS)
    for j, name in enumerate(WILSON_LRS):
        errors = np.asarray(wilson_result[name]["test_error"], dtype=float)
        ax.bar(np.arange(len(config.wilson_p)) + j * width, errors.mean(1), width,
               yerr=errors.std(1), label=f"{name} (lr {WILSON_LRS[name]:g})")
    for i, p in enumerate(config.wilson_p):
        ax.hlines(1 - p, i - width / 2, i + 0.8 - width / 2, color="black", ls=":")
    ax.set_xticks(np.arange(len(config.wilson_p)) + 0.4 - width / 2,
                  [f"p = {p}" for p in config.wilson_p])
    ax.set(ylabel="test error", title="Wilson et al. 2017: adaptive methods → 1 − p (dotted)")
    ax.legend(fontsize=7)
    figs["wilson"] = fig4
    return figs


def summary_table(config: OptimizersConfig, found: dict[str, dict[str, dict]]):
    """DeepOBS's table as a figure: per problem and optimiser, the best final error (its lr),
    the steps to the threshold and how many grid lrs reach it; the best per problem in bold."""
    rows = list(found)
    fig, ax = new_figure(width=2.2 + 1.9 * len(config.optimizers), height=0.5 + 0.42 * len(rows))
    ax.axis("off")
    cells = []
    for problem in rows:
        by = found[problem]
        cells.append([f"{by[o]['best_final']:.2g} @ {by[o]['best_lr']:g}\n"
                      + (f"{by[o]['steps_to_threshold']:,.0f} steps"
                         if math.isfinite(by[o]["steps_to_threshold"]) else "never")
                      + f", {by[o]['lrs_reaching']}/{len(config.lrs)} lrs"
                      for o in config.optimizers])
    table = ax.table(cellText=cells, rowLabels=rows, colLabels=config.optimizers,
                     loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1, 2.2)
    for i, problem in enumerate(rows, start=1):
        winner = fastest(found[problem])
        if winner is not None:
            table[i, config.optimizers.index(winner)].get_text().set_fontweight("bold")
    ax.set_title("Best final error @ its lr; steps to the threshold; grid lrs reaching it "
                 "(bold: fastest, ties by final error)", fontsize=9, pad=24)
    return fig


EXPERIMENT = Experiment(
    name="optimizers",
    section="DeepOBS; Wilson et al. 2017",
    title="Optimiser choice: best error, speed and learning-rate sensitivity",
    version=4,
    config_class=OptimizersConfig,
    scales={
        "quick": {"optimizers": ["sgd", "momentum", "adam"], "lrs": [1e-3, 1e-2, 1e-1, 1.0],
                  "problems": ["quadratic", "logistic"], "condition_numbers": [10, 1_000],
                  "steps": 300, "eval_every": 25, "wilson_steps": 3_000, "wilson_p": [0.6]},
        "default": {"steps": 1_500, "wilson_steps": 10_000},
        "paper": {"steps": 10_000},
    },
    seeds={"quick": 2, "default": 3, "paper": 10},
    run=run,
    figures=figures,
    claims=CLAIMS,
)
