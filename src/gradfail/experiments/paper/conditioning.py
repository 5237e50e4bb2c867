"""Architecture and conditioning: encoding piecewise-linear curves (paper §4).

Shalev-Shwartz, Shamir & Shammah, ICML 2017, §4 (Figure 6, Lemmas 1–2, Theorem 3); setup from
`PWL_fail1.py` (spec §3). From a curve f = W p (n = 100 points, k = 3 kinks) recover the kink
vector p. The answer is linear and known, p = W⁻¹ f, a convolution with (1, −2, 1), yet:

- the full n×n linear map (a convex problem) barely moves in 50,000 Adam steps: its Hessian
  E[f fᵀ] ∝ W Wᵀ has condition number Ω(n^3.5) (Theorem 3; ≈1.35e8 at n = 100);
- a 3-tap convolution has the right architecture but its 3×3 window covariance still has
  condition number Θ(n³) (≈1.6e6): it converges, slowly;
- the same convolution on whitened windows (C^{−1/2}) has condition number 1 and is exact
  within 500 steps: the remedy is preconditioning, made cheap by the architecture;
- a deep autoencoder ("perhaps I should use a deeper network?") blurs the kinks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from gradfail.data.curves import (
    autoencoder_curves,
    check_size,
    convolve,
    curves_of,
    kink_vectors,
    ramp_matrix,
    relative_errors,
    whitening,
    windows,
)
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext, check_finite
from gradfail.nets.batched import BatchedMLP, paper_adam
from gradfail.plotting import band, new_figure, new_grid

ATTEMPTS = ("full linear", "convolution", "whitened convolution", "autoencoder")
TF_ADAM = {"betas": (0.9, 0.999), "eps": 1e-8}  # PWL_fail1.py uses TF's default Adam


class ConditioningConfig(Config):
    """Defaults are the published attempts (spec §3.2, Appendix C)."""

    n: PositiveInt = Field(100, description="points per curve")
    k: PositiveInt = Field(3, description="kinks per curve")
    distribution: Literal["code", "paper"] = Field("code", description="kink distribution")
    train_curves: PositiveInt = Field(10_000, description="training pool (sampled with replacement)")
    validation_curves: PositiveInt = Field(1_000, description="validation curves")
    batch_size: PositiveInt = Field(100, description="curves per step (all but whitened)")
    full_steps: PositiveInt = 50_000
    full_lr: PositiveFloat = 1e-4
    conv_steps: PositiveInt = 50_000
    conv_lr: PositiveFloat = 0.05
    whitened_steps: PositiveInt = 500
    whitened_lr: PositiveFloat = 0.99
    whitened_batch_size: PositiveInt = 10
    autoencoder_steps: PositiveInt = Field(50_000, description="the code ran 10k; the figure 50k")
    autoencoder_lr: PositiveFloat = 1e-3
    checkpoints: list[PositiveInt] = Field([500, 10_000, 50_000], description="Figure 6's columns")
    eval_every: PositiveInt = Field(250, description="steps between validation errors")
    condition_ns: list[PositiveInt] = Field([25, 50, 100, 200, 400], min_length=2)
    condition_curves: PositiveInt = Field(20_000, description="curves per second-moment matrix")
    extension_ns: list[PositiveInt] = Field([25, 50, 100, 200], min_length=1)
    extension_steps: PositiveInt = Field(20_000, description="cap on steps to 1% error")

    @model_validator(mode="after")
    def _check(self) -> ConditioningConfig:
        for n in {self.n, *self.condition_ns, *self.extension_ns}:
            check_size(n, self.k)
        if self.distribution == "code" and self.k != 3:
            raise ValueError("the code's slope patterns are defined for k = 3 only")
        return self


# --------------------------------------------------------------------------------------------
# The attempts: each maps a batch of curves f (seeds, B, n) to predicted kinks or curves.


@dataclass
class Curves:
    """An attempt's training and validation curves per seed, with their kink vectors (None for
    the autoencoder, whose kinks are real-valued: its "max" error is then over every point)."""

    train_f: torch.Tensor
    valid_f: torch.Tensor
    p: torch.Tensor | None
    valid_kinks: torch.Tensor | None


def attempt_curves(config: ConditioningConfig, attempt: str, ctx: RunContext) -> Curves:
    seeds, n = ctx.n_seeds, config.n
    data = ctx.generator("data", attempt == "autoencoder")
    count = seeds * (config.train_curves + config.validation_curves)
    if attempt == "autoencoder":
        f = autoencoder_curves(count, n, config.k, data).float().view(seeds, -1, n)
        p = None
    else:
        p = kink_vectors(count, n, config.k, config.distribution, data).float().view(seeds, -1, n)
        f = curves_of(p.double()).float()
    return Curves(f[:, :config.train_curves], f[:, config.train_curves:], p,
                  None if p is None else p[:, config.train_curves:] != 0)


@dataclass
class Learner:
    """What an attempt trains (its weights), how it predicts, and its step budget, lr and batch."""

    weights: list[torch.Tensor]
    predict: Callable[[torch.Tensor], torch.Tensor]
    steps: int
    lr: float
    batch: int


def attempt_learner(config: ConditioningConfig, attempt: str, train_f: torch.Tensor,
                    ctx: RunContext) -> Learner:
    """Zero weights (the code's init), except the autoencoder's truncated normal."""
    seeds, n = ctx.n_seeds, config.n
    if attempt == "full linear":
        weights = [torch.zeros(seeds, n, n, device=ctx.device, requires_grad=True)]
        return Learner(weights, lambda f: f @ weights[0], config.full_steps, config.full_lr,
                       config.batch_size)  # p̂ = f Û
    if attempt == "autoencoder":
        generator = ctx.generator("init", attempt)
        encoder = BatchedMLP(seeds, [n, 500, 100, 2 * config.k], generator, ctx.device)
        decoder = BatchedMLP(seeds, [2 * config.k, 100, 100, n], generator, ctx.device)
        return Learner([*encoder.parameters(), *decoder.parameters()],
                       lambda f: decoder(torch.relu(encoder(f))),  # ReLU on the code too
                       config.autoencoder_steps, config.autoencoder_lr, config.batch_size)
    weights = [torch.zeros(seeds, 3, device=ctx.device, requires_grad=True)]
    if attempt == "whitened convolution":
        transform = whitening(train_f)
        return Learner(weights, lambda f: convolve(f, weights[0], transform),
                       config.whitened_steps, config.whitened_lr, config.whitened_batch_size)
    return Learner(weights, lambda f: convolve(f, weights[0]), config.conv_steps, config.conv_lr,
                   config.batch_size)


def train_attempt(config: ConditioningConfig, attempt: str, ctx: RunContext) -> dict:
    """Validation errors every `eval_every` steps and the first two validation curves at the
    checkpoints, per seed."""
    seeds, n = ctx.n_seeds, config.n
    curves = attempt_curves(config, attempt, ctx)
    train_f, valid_f, p = curves.train_f, curves.valid_f, curves.p
    learner = attempt_learner(config, attempt, train_f, ctx)
    optimiser = paper_adam(learner.weights, lr=learner.lr, **TF_ADAM)

    def reconstruct(f: torch.Tensor) -> torch.Tensor:
        out = learner.predict(f)
        return out if p is None else curves_of(out)  # f̂ = W p̂

    def loss_of(index: torch.Tensor) -> torch.Tensor:
        batch_f = train_f.gather(1, index[..., None].expand(-1, -1, n))
        if p is None:
            return (learner.predict(batch_f) - batch_f).square().mean((1, 2))
        squared = (learner.predict(batch_f) - p[:, :config.train_curves].gather(
            1, index[..., None].expand(-1, -1, n))).square()
        return squared.sum(-1).mean(-1) if attempt == "full linear" else squared.mean((1, 2))

    sampler = ctx.generator("batches", attempt)
    record = {"steps": [], "rmse": [], "max": [], "snapshots": {}}
    steps = learner.steps
    with ctx.track(f"conditioning: {attempt}", steps) as advance:
        for step in range(steps + 1):
            if step % config.eval_every == 0 or step == steps or step in config.checkpoints:
                with torch.no_grad():
                    rmse, worst = relative_errors(reconstruct(valid_f), valid_f,
                                                  curves.valid_kinks)
                    if step in config.checkpoints or step == steps:
                        record["snapshots"][step] = reconstruct(valid_f[:, :2])[0]
                record["steps"].append(step)
                record["rmse"].append(rmse.tolist())
                record["max"].append(worst.tolist())
            if step == steps:
                break
            index = torch.randint(config.train_curves, (seeds, learner.batch), generator=sampler,
                                  device=ctx.device)
            loss = loss_of(index)
            optimiser.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimiser.step()
            if step % 1000 == 0:
                check_finite(loss, f"conditioning {attempt}, step {step}")
            advance(1)
    return {"attempt": attempt, "steps": record["steps"], "rmse": np.array(record["rmse"]).T,
            "max": np.array(record["max"]).T, "snapshots": record["snapshots"],
            "originals": valid_f[0, :2]}


# --------------------------------------------------------------------------------------------
# The conditioning analysis, measured from data (spec §3.4), and the extension.


def condition(moment: torch.Tensor) -> float:
    """λ_max / λ_min of a symmetric second-moment matrix, by a float64 symmetric eigensolver."""
    values = torch.linalg.eigvalsh(moment.double())
    return float(values[-1] / values[0])


@torch.no_grad()
def condition_numbers(config: ConditioningConfig, n: int, ctx: RunContext) -> dict:
    """Under the paper's distribution: cond E[f fᵀ] (full model), cond of the 3×3 window
    moment (convolution), and of the whitened windows on fresh curves (whitened)."""
    generator = ctx.generator("condition", n)
    curves = [curves_of(kink_vectors(config.condition_curves, n, config.k, "paper", generator))
              for _ in range(2)]
    first = windows(curves[0]).flatten(0, 1)
    fresh = windows(curves[1]).flatten(0, 1) @ whitening(curves[0][None])[0].T
    return {"n": n,
            "full": condition(curves[0].T @ curves[0] / len(curves[0])),
            "ramp": condition(ramp_matrix(n) @ ramp_matrix(n).T),
            "convolution": condition(first.T @ first / len(first)),
            "whitened": condition(fresh.T @ fresh / len(fresh))}


def steps_to_one_percent(config: ConditioningConfig, n: int, ctx: RunContext) -> dict:
    """The conv problem under Adam (lr 0.05), plain SGD, and SGD on whitened windows, both SGDs
    at step 1/λ_max of their Hessian: steps until validation relative RMSE < 1% (capped)."""
    generator = ctx.generator("extension", n)
    p = kink_vectors(2 * config.train_curves, n, config.k, config.distribution, generator)
    f = curves_of(p)
    train_p, train_f = p[:config.train_curves].float(), f[:config.train_curves].float()
    valid_f = f[config.train_curves:].float()[None]
    transform = whitening(train_f[None])
    raw = windows(train_f).flatten(0, 1)

    def curvature(w: torch.Tensor) -> float:
        """λ_max of the mean-squared-error Hessian over the n outputs (2 of them padded)."""
        return float(torch.linalg.eigvalsh((2 * w.T @ w / len(w) * (n - 2) / n).double())[-1])

    out = {"n": n}
    for name in ("Adam", "SGD", "whitened SGD"):
        whiten = transform if name == "whitened SGD" else None
        taps = torch.zeros(1, 3, requires_grad=True)
        optimiser = (paper_adam([taps], lr=config.conv_lr, **TF_ADAM) if name == "Adam" else
                     torch.optim.SGD([taps], lr=1 / curvature(
                         raw if whiten is None else raw @ whiten[0].T)))
        out[name] = math.inf
        for step in range(config.extension_steps + 1):
            if step % 50 == 0:
                with torch.no_grad():
                    rmse, _ = relative_errors(curves_of(convolve(valid_f, taps, whiten)), valid_f)
                if rmse.item() < 0.01:
                    out[name] = step
                    break
            index = torch.randint(config.train_curves, (config.batch_size,), generator=generator)
            loss = (convolve(train_f[index][None], taps, whiten) - train_p[index][None]
                    ).square().mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return out


def run(config: ConditioningConfig, ctx: RunContext) -> dict:
    attempts = [ctx.part(f"train {a}", lambda a=a: train_attempt(config, a, ctx)) for a in ATTEMPTS]
    conditions = [ctx.part(f"condition n={n}", lambda n=n: condition_numbers(config, n, ctx))
                  for n in config.condition_ns]
    extension = [ctx.part(f"steps to 1% n={n}", lambda n=n: steps_to_one_percent(config, n, ctx))
                 for n in config.extension_ns]
    return {"attempts": attempts, "conditions": conditions, "extension": extension}


# --------------------------------------------------------------------------------------------
# Claims and figures.

FULL_BUDGET = 50_000


def attempt_result(result: dict, name: str) -> dict:
    return next(a for a in result["attempts"] if a["attempt"] == name)


def first_step_below(run: dict, threshold: float = 0.01) -> float:
    median = np.median(np.asarray(run["rmse"]), axis=0)
    hits = np.flatnonzero(median < threshold)
    return float(run["steps"][hits[0]]) if len(hits) else math.inf


def check_whitened(config: ConditioningConfig, result: dict) -> Check:
    step = first_step_below(attempt_result(result, "whitened convolution"))
    return Check.judge(step <= 500, step, f"median relative RMSE < 1% from step {step:,.0f}")


def check_conv_slower(config: ConditioningConfig, result: dict) -> Check:
    fast = first_step_below(attempt_result(result, "whitened convolution"))
    slow = first_step_below(attempt_result(result, "convolution"))
    detail = (f"convolution < 1% at step {slow:,.0f}" if math.isfinite(slow) else
              f"convolution not < 1% in {config.conv_steps:,} steps") + f"; whitened at {fast:,.0f}"
    if math.isinf(fast):
        return Check.not_checked(None, detail + "; the whitened one never got there")
    if math.isinf(slow) and config.conv_steps < 10 * fast:
        return Check.not_checked(None, detail + "; too few convolution steps to tell")
    return Check.judge(slow > 10 * fast, slow / fast, detail)


def check_full_stuck(config: ConditioningConfig, result: dict) -> Check:
    run = attempt_result(result, "full linear")
    final = float(np.median(np.asarray(run["rmse"])[:, -1]))
    at_kinks = float(np.median(np.asarray(run["max"])[:, -1]))
    detail = (f"median relative RMSE {final:.2%}, max error at the kinks {at_kinks:.2%}, after "
              f"{config.full_steps:,} steps")
    return Check.within_budget(final <= 0.01, False, config.full_steps, FULL_BUDGET, final,
                               detail)


def fitted_exponent(result: dict, key: str) -> float:
    ns = [c["n"] for c in result["conditions"]]
    return float(np.polyfit(np.log(ns), np.log([c[key] for c in result["conditions"]]), 1)[0])


def check_full_growth(config: ConditioningConfig, result: dict) -> Check:
    slope = fitted_exponent(result, "full")
    return Check.judge(slope >= 3.5, slope, f"cond E[ffᵀ] ~ n^{slope:.2f} over n = "
                       f"{config.condition_ns} (cond W Wᵀ ~ n^{fitted_exponent(result, 'ramp'):.2f})")


def check_conv_growth(config: ConditioningConfig, result: dict) -> Check:
    slope = fitted_exponent(result, "convolution")
    return Check.judge(abs(slope - 3) <= 0.45, slope, f"cond of the window moment ~ n^{slope:.2f}")


def check_whitened_flat(config: ConditioningConfig, result: dict) -> Check:
    worst = max(c["whitened"] for c in result["conditions"])
    return Check.judge(worst < 2, worst, f"largest cond after whitening {worst:.4f} (fresh curves)")


CLAIMS = (
    Claim("whitened convolution fast", "conv + conditioning ≈ exact already at 500 steps "
          "(Figure 6c)", "median relative RMSE < 1% within 500 steps", check_whitened),
    Claim("convolution slow", "conv converges, slowly: 22% at 500, 3% at 10k, 0.1% at 50k "
          "(Figure 6b)", "> 10× the whitened one's steps to 1%", check_conv_slower),
    Claim("full linear stuck", "full n×n linear map: no clear improvement, errors at the kinks "
          "(Figure 6a)", "median relative RMSE > 1% after 50,000 steps", check_full_stuck),
    Claim("full model cond ≥ n^3.5", "cond = Ω(n^3.5) (Theorem 3); ≈1.35e8 at n = 100",
          "fitted exponent ≥ 3.5", check_full_growth),
    Claim("convolution cond ~ n^3", "window covariance cond Θ(n³) (A.6); ≈1.6e6 at n = 100",
          "fitted exponent within 15% of 3", check_conv_growth),
    Claim("whitened cond ≈ 1", "after whitening the condition number is ≈ 1 (§4.1.3)",
          "below 2 for every n", check_whitened_flat),
)


def figures(config: ConditioningConfig, result: dict) -> dict:
    fig1, grid = new_grid(len(ATTEMPTS), len(config.checkpoints), width=3.2, height=2.4)
    for row, name in enumerate(ATTEMPTS):
        run = attempt_result(result, name)
        original = np.asarray(run["originals"])
        for col, step in enumerate(config.checkpoints):
            ax = grid[row][col]
            shown = max(int(s) for s in run["snapshots"] if int(s) <= step)
            ax.plot(original.T, color="tab:blue", lw=1.2)
            ax.plot(np.asarray(run["snapshots"][str(shown)]).T, color="tab:red", lw=1, ls="--")
            ax.set_title(f"{name}, step {shown:,}", fontsize=8)
            ax.tick_params(labelsize=6)
    fig1.suptitle("Figure 6 again: original (blue) vs reconstruction (red)")

    fig2, axes = new_figure(ncols=2)
    for ax, key, label, title in zip(
            axes, ("rmse", "max"), ("relative RMSE", "max error at the kinks / range"),
            ("everywhere", "at the kinks (autoencoder: anywhere)"), strict=True):
        for name in ATTEMPTS:
            run = attempt_result(result, name)
            band(ax, run["steps"], run[key], name)
        ax.set(xscale="symlog", yscale="log", xlabel="Adam step", ylabel=label, title=title)
        ax.axhline(0.01, color="grey", ls=":", lw=1)
    axes[0].legend(fontsize=8)
    fig2.suptitle("Reconstruction error per attempt (band = seeds)")

    fig3, ax = new_figure()
    ns = np.array([c["n"] for c in result["conditions"]])
    for key, label in (("full", "full model: cond E[ffᵀ]"), ("convolution", "convolution"),
                       ("whitened", "whitened convolution")):
        ax.loglog(ns, [c[key] for c in result["conditions"]], "o-", label=label)
    anchor = {c["n"]: c for c in result["conditions"]}[ns[0]]
    for power, key in ((3.5, "full"), (3, "convolution")):
        ax.loglog(ns, anchor[key] * (ns / ns[0]) ** power, ":", color="grey", lw=1)
        ax.annotate(f"n^{power}", (ns[-1], anchor[key] * (ns[-1] / ns[0]) ** power), fontsize=8)
    ax.set(xlabel="n", ylabel="condition number", title="Condition numbers from data")
    ax.legend(fontsize=8)

    fig4, ax = new_figure()
    for name in ("Adam", "SGD", "whitened SGD"):
        steps = [e[name] for e in result["extension"]]
        cap = config.extension_steps
        ax.plot([e["n"] for e in result["extension"]], [s if s is not None and math.isfinite(s)
                                                         else cap for s in steps], "o-", label=name)
    ax.axhline(config.extension_steps, color="grey", ls=":", label="cap (not reached)")
    ax.set(xscale="log", yscale="log", xlabel="n", ylabel="steps to 1% relative RMSE",
           title="Extension: the step count follows the condition number")
    ax.legend(fontsize=8)
    return {"curves": fig1, "errors": fig2, "condition_numbers": fig3, "steps_to_one_percent": fig4}


EXPERIMENT = Experiment(
    name="conditioning",
    section="§4",
    title="Architecture and conditioning: piecewise-linear curves",
    version=2,  # 2: the max error is measured at the kinks
    config_class=ConditioningConfig,
    scales={
        "quick": {"full_steps": 1_000, "conv_steps": 1_000, "autoencoder_steps": 500,
                  "checkpoints": [100, 500, 1_000], "eval_every": 100, "train_curves": 2_000,
                  "validation_curves": 200, "condition_ns": [25, 50, 100],
                  "condition_curves": 5_000, "extension_ns": [25, 50], "extension_steps": 2_000},
        "default": {"conv_steps": 20_000, "autoencoder_steps": 10_000, "extension_steps": 5_000},
        "paper": {},
    },
    seeds={"quick": 2, "default": 3, "paper": 5},
    run=run,
    figures=figures,
    claims=CLAIMS,
)
