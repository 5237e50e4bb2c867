"""Saddles and local minima: the critical points of a small network, and how GD meets them.

Dauphin et al. 2014, "Identifying and attacking the saddle point problem in high-dimensional
non-convex optimization" (Figure 1: the higher a critical point's loss, the larger the fraction
of negative Hessian eigenvalues, its index); Jin et al. 2017 (perturbed GD escapes saddles);
Lee et al. 2016 (GD from a random start converges to minimisers, not saddles).

A student tanh network learns a teacher of the same shape from a fixed Gaussian sample, so the
global minimum is 0. Critical points of every index are found by Newton's method on ∇L = 0,
started from points along GD trajectories; at each, the Hessian's eigenvalues give its index.
Plain GD is then started at the saddles (it stays for long: only round-off pushes it away) and
compared with perturbed GD on the strict ones, whose negative curvature lets a perturbation of
radius r grow to order one within the budget; and the end points of the GD runs that converged
(gradient below tolerance, loss no longer falling) are classified as minima or not.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt
from scipy.stats import spearmanr
from torch.func import hessian, vmap

from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.maths.statistics import (
    bootstrap_interval,
    fraction_interval,
    kaplan_meier,
    logrank_test,
)
from gradfail.plotting import band, new_figure

ABOVE_ZERO = math.ulp(0.0)  # "higher", "more often": strictly above 0, not touching it


class SaddlesConfig(Config):
    """Sizes are ours (the paper used MNIST/CIFAR MLPs); small enough for exact Hessians."""

    inputs: PositiveInt = Field(4, description="input dimension")
    hidden: PositiveInt = Field(4, description="tanh units of teacher and student")
    samples: PositiveInt = Field(100, description="fixed training sample x ~ N(0, I)")
    starts: PositiveInt = Field(64, description="random initialisations")
    gd_lr: PositiveFloat = Field(0.05)
    gd_steps: PositiveInt = Field(100_000, description="GD steps of each trajectory: their end "
                                  "points are judged only once converged (1 of 64 at 20,000 "
                                  "steps, 38 at 100,000)")
    snapshots: PositiveInt = Field(6, description="Newton starts per trajectory (log-spaced)")
    newton_steps: PositiveInt = Field(100)
    critical_gradient: PositiveFloat = Field(1e-8, description="‖∇L‖ below: a critical point")
    minimum_gradient: PositiveFloat = Field(1e-4, description="‖∇L‖ below: GD has stopped")
    converged_window: float = Field(0.1, gt=0, lt=1, description="converged: ‖∇L‖ below "
                                    "minimum_gradient at the end and the loss fell by less than"
                                    " lr·minimum_gradient² a step over this last fraction")
    escape_steps: PositiveInt = Field(5_000, description="steps of plain / perturbed GD")
    escape_drop: float = Field(0.01, gt=0, lt=1, description="escaped: loss below (1 − this)"
                               " × the saddle's (saddles lie at losses from 1e-3 to 1)")
    perturbation: PositiveFloat = Field(1e-2, description="radius r of Jin et al.'s noise ball")


# --------------------------------------------------------------------------------------------
# The problem: a flat parameter vector θ = (W1, b1, w2, b2) and its loss on a fixed sample.


def unpack(theta: torch.Tensor, config: SaddlesConfig) -> tuple[torch.Tensor, ...]:
    """θ (..., P) → W1 (..., d, h), b1 (..., 1, h), w2 (..., h, 1), b2 (..., 1, 1)."""
    d, h, lead = config.inputs, config.hidden, theta.shape[:-1]
    return (theta[..., : d * h].reshape(*lead, d, h),
            theta[..., d * h: d * h + h].reshape(*lead, 1, h),
            theta[..., d * h + h: d * h + 2 * h].reshape(*lead, h, 1),
            theta[..., -1:].reshape(*lead, 1, 1))


def n_params(config: SaddlesConfig) -> int:
    return config.inputs * config.hidden + 2 * config.hidden + 1


def network(theta: torch.Tensor, x: torch.Tensor, config: SaddlesConfig) -> torch.Tensor:
    """f(x) = tanh(x·W1 + b1)·w2 + b2 for one θ (P,) or a batch of them (M, P): (..., n)."""
    w1, b1, w2, b2 = unpack(theta, config)
    return (torch.tanh(x @ w1 + b1) @ w2 + b2).squeeze(-1)


def random_parameters(count: int, config: SaddlesConfig, generator: torch.Generator
                      ) -> torch.Tensor:
    """θ with N(0, 1/fan_in) weights and biases (float64: the Hessians need it)."""
    d, h = config.inputs, config.hidden
    scale = torch.cat([torch.full((d * h + h,), d**-0.5), torch.full((h + 1,), h**-0.5)])
    return torch.randn(count, n_params(config), generator=generator,
                       dtype=torch.float64, device=generator.device) * scale.to(generator.device)


def problem(config: SaddlesConfig, ctx: RunContext) -> dict:
    generator = ctx.generator("teacher")
    teacher = random_parameters(1, config, generator)[0] * 2  # a teacher with used units
    x = torch.randn(config.samples, config.inputs, generator=generator, dtype=torch.float64,
                    device=ctx.device)
    y = network(teacher, x, config)

    def losses(theta):  # ½·mean squared error, per row of θ (or for one θ)
        return 0.5 * (network(theta, x, config) - y).square().mean(-1)

    def gradient(theta):  # backpropagation written out for rows of θ (M, P): GD's hot loop
        w1, b1, w2, b2 = unpack(theta, config)
        h = torch.tanh(x @ w1 + b1)  # (M, n, h)
        r = ((h @ w2 + b2).squeeze(-1) - y) / len(y)  # (M, n): ∂L/∂f
        back = r[..., None] * w2.transpose(1, 2) * (1 - h * h)  # (M, n, h): ∂L/∂(xW1 + b1)
        return torch.cat([(x.T @ back).flatten(1), back.sum(1),
                          (h.transpose(1, 2) @ r[..., None]).flatten(1), r.sum(1, keepdim=True)],
                         1)

    return {"losses": losses, "gradient": gradient, "hessian": vmap(hessian(losses))}


def gradient_descent(task: dict, theta: torch.Tensor, lr: float, steps: int, every: int = 0,
                     advance=None) -> dict:
    """Plain GD on every row of θ; every `every` steps, the loss and ‖∇L‖ of each row."""
    trace = {"step": [], "loss": [], "gradient_norm": [], "path": []}
    for step in range(steps + 1):
        g = task["gradient"](theta)
        if every and step % every == 0:
            trace["step"].append(step)
            trace["loss"].append(task["losses"](theta))
            trace["gradient_norm"].append(g.norm(dim=1))
            trace["path"].append(theta)
        if step < steps:
            theta = theta - lr * g
            if advance:
                advance(1)
    return {"theta": theta, **{k: torch.stack(v, 1) if k != "step" else v
                               for k, v in trace.items() if v}}


def spectrum(task: dict, theta: torch.Tensor) -> dict:
    """Per row: loss, ‖∇L‖, Hessian eigenvalues, and the index (fraction negative, counting
    eigenvalues below −1e-6 × the largest |λ| so round-off on flat directions is not)."""
    eigenvalues = torch.linalg.eigvalsh(task["hessian"](theta))
    tolerance = 1e-6 * eigenvalues.abs().amax(1, keepdim=True)
    return {"loss": task["losses"](theta), "gradient_norm": task["gradient"](theta).norm(dim=1),
            "eigenvalues": eigenvalues,
            "index": (eigenvalues < -tolerance).double().mean(1)}


# --------------------------------------------------------------------------------------------
# Critical points of every index: Newton's method on ∇L = 0 from points along GD trajectories.


def newton_to_critical(task: dict, theta: torch.Tensor, steps: int) -> torch.Tensor:
    """Levenberg–Marquardt on ½‖∇L‖², batched over rows: θ ← θ − (H² + μI)⁻¹Hg, a step kept
    only where it lowers ‖∇L‖, μ shrunk after a kept step and grown after a refused one.
    Newton's method is attracted by saddles as much as by minima (Dauphin et al. §5)."""
    g = task["gradient"](theta)
    damping = torch.full((len(theta), 1), 1e-2, dtype=theta.dtype, device=theta.device)
    for _ in range(steps):
        values, vectors = torch.linalg.eigh(task["hessian"](theta))
        along = (vectors.transpose(1, 2) @ g[..., None]).squeeze(-1)
        trial = theta - (vectors @ (values / (values**2 + damping) * along)[..., None]
                         ).squeeze(-1)
        trial_g = task["gradient"](trial)
        better = (trial_g.norm(dim=1) < g.norm(dim=1))[:, None]
        theta, g = torch.where(better, trial, theta), torch.where(better, trial_g, g)
        damping = torch.where(better, damping / 3, damping * 10).clamp(1e-20, 1e10)
    return theta


def critical_points(config: SaddlesConfig, task: dict, ctx: RunContext) -> dict:
    starts = random_parameters(config.starts, config, ctx.generator("starts"))
    every = max(config.gd_steps // 200, 1)
    with ctx.track("saddles: GD trajectories", config.gd_steps) as advance:
        run = gradient_descent(task, starts, config.gd_lr, config.gd_steps, every, advance)
    picks = np.unique(np.geomspace(1, len(run["step"]), config.snapshots).astype(int) - 1)
    snapshots = run["path"][:, picks].reshape(-1, starts.shape[1])
    points = newton_to_critical(task, snapshots, config.newton_steps)
    points_found = {"theta": points, **spectrum(task, points),
                    "trajectory": torch.arange(len(starts), device=ctx.device).repeat_interleave(
                        len(picks))}
    critical = points_found["gradient_norm"] < config.critical_gradient
    end = spectrum(task, run["theta"])
    end["lowest_eigenvalue"] = end.pop("eigenvalues")[:, 0]
    return {"trace_steps": run["step"], "trace_loss": run["loss"][:8],
            "trace_gradient_norm": run["gradient_norm"][:8],
            "gd_end": {**end, "converged": converged(config, run, end)},
            "newton_starts": len(snapshots),
            "critical": {k: v[critical] for k, v in points_found.items()}}


def converged(config: SaddlesConfig, run: dict, end: dict) -> torch.Tensor:
    """Per GD run: ‖∇L‖ < minimum_gradient at the end, and over the last `converged_window` of
    the budget the loss fell by less than lr·minimum_gradient² a step, GD's decrease when the
    gradient stays at the tolerance: at rest there, not passing a saddle slowly."""
    steps = np.asarray(run["step"])
    window = int(np.searchsorted(steps, (1 - config.converged_window) * config.gd_steps))
    fell = run["loss"][:, window] - end["loss"]
    allowed = config.gd_lr * config.minimum_gradient**2 * (config.gd_steps - steps[window])
    return (end["gradient_norm"] < config.minimum_gradient) & (fell.abs() <= allowed)


# --------------------------------------------------------------------------------------------
# Leaving a saddle: plain GD against perturbed GD (Jin et al. 2017, Algorithm 2).


def escape(config: SaddlesConfig, task: dict, saddles: torch.Tensor, ctx: RunContext) -> dict:
    """Steps until the loss is a fraction `escape_drop` below the saddle's, for both rules,
    from the saddle itself. Perturbed GD adds a uniform draw from the ball of radius r whenever
    ‖∇L‖ < minimum_gradient and no perturbation happened in the last 100 steps."""
    generator = ctx.generator("perturbations")
    start_loss = task["losses"](saddles)
    out = {}
    for rule in ("plain", "perturbed"):
        theta = saddles.clone()
        escaped = torch.full((len(saddles),), math.nan, dtype=torch.float64)
        last_kick = torch.full((len(saddles),), -math.inf, dtype=torch.float64)
        losses = []
        with ctx.track(f"saddles: {rule} GD from saddles", config.escape_steps) as advance:
            for step in range(config.escape_steps):
                g = task["gradient"](theta)
                loss = task["losses"](theta)
                losses.append(loss)
                escaped = torch.where(escaped.isnan()
                                      & (loss < (1 - config.escape_drop) * start_loss),
                                      step, escaped)
                if rule == "perturbed":
                    kick = (g.norm(dim=1) < config.minimum_gradient) & (step - last_kick > 100)
                    last_kick = torch.where(kick, step, last_kick)
                    theta = theta + kick[:, None] * ball(theta.shape, config.perturbation,
                                                         generator)
                theta = theta - config.gd_lr * g
                advance(1)
        out[rule] = {"steps_to_escape": escaped, "loss": torch.stack(losses, 1)[:, ::10]}
    return out


def ball(shape: tuple[int, int], radius: float, generator: torch.Generator) -> torch.Tensor:
    """Uniform draws from the d-ball of the given radius, one per row."""
    direction = torch.randn(shape, generator=generator, dtype=torch.float64,
                            device=generator.device)
    direction /= direction.norm(dim=1, keepdim=True)
    fraction = torch.rand(shape[0], 1, generator=generator, dtype=torch.float64,
                          device=generator.device) ** (1 / shape[1])
    return radius * fraction * direction


def strict_curvature(config: SaddlesConfig, steps: int) -> float:
    """γ: a saddle is strict at a budget of `steps` when λ_min ≤ −γ, i.e. when GD's growth
    along its most negative direction, e^(lr·γ·steps), carries an offset of the perturbation
    radius r to order one within the budget (Jin et al. 2017 escape in ~log(1/r)/(lr·γ) steps,
    §3). Near a flatter saddle GD is still passing when the budget ends."""
    return math.log(1 / config.perturbation) / (config.gd_lr * steps)


def run(config: SaddlesConfig, ctx: RunContext) -> dict:
    task = problem(config, ctx)
    searched = ctx.part("critical points", lambda: critical_points(config, task, ctx))
    critical = searched["critical"]
    saddles = torch.tensor(critical["theta"], dtype=torch.float64, device=ctx.device)[
        torch.tensor(critical["index"]) > 0]
    return {**searched, "escape": ctx.part("escape from saddles",
                                        lambda: escape(config, task, saddles, ctx))}


# --------------------------------------------------------------------------------------------
# Claims and figures.


def check_index_rises_with_loss(config: SaddlesConfig, result: dict) -> Check:
    critical = result["critical"]
    loss, index = np.asarray(critical["loss"]), np.asarray(critical["index"])
    if len(loss) < 10:
        return Check.not_checked(None, f"only {len(loss)} critical points found (10 needed)")

    def rho(rows):
        rows = rows.astype(int)
        return np.nan_to_num(spearmanr(loss[rows], index[rows])[0])  # constant: no rank order
    trajectories = np.asarray(critical["trajectory"])
    found = bootstrap_interval(np.arange(len(loss)), rho, clusters=trajectories)
    return Check.at_least(found, ABOVE_ZERO,
                          f"Spearman ρ(loss, index) over {len(loss)} critical points of "
                          f"{result['newton_starts']} Newton runs from "
                          f"{len(np.unique(trajectories))} GD trajectories; indices "
                          f"{index.min():.2f}–{index.max():.2f}")


def censored_steps(config: SaddlesConfig, steps) -> np.ndarray:
    steps = np.asarray(steps, dtype=float)
    return np.where(np.isnan(steps), config.escape_steps, steps)


def km_median(times: np.ndarray, observed: np.ndarray) -> float:
    """The Kaplan–Meier median escape time; inf when over half never escaped."""
    event_times, survival = kaplan_meier(times, observed)
    below = survival <= 0.5
    return float(event_times[below.argmax()]) if below.any() else math.inf


def check_perturbed_escapes(config: SaddlesConfig, result: dict) -> Check:
    critical = result["critical"]
    saddle = np.asarray(critical["index"]) > 0
    curvature = np.asarray(critical["eigenvalues"])[saddle, 0]
    strict = curvature <= -strict_curvature(config, config.escape_steps)
    trajectories = np.asarray(critical["trajectory"])[saddle][strict]
    steps = {rule: np.asarray(result["escape"][rule]["steps_to_escape"], dtype=float)[strict]
             for rule in ("plain", "perturbed")}
    detail = (f"{strict.sum()} of {saddle.sum()} saddles strict (λ_min ≤ "
              f"−{strict_curvature(config, config.escape_steps):.3g})")
    if not strict.any():
        return Check.not_checked(None, detail + "; none to escape from")
    left = {rule: ~np.isnan(found) for rule, found in steps.items()}
    times = {rule: censored_steps(config, found) for rule, found in steps.items()}
    medians = {rule: km_median(times[rule], left[rule]) for rule in steps}
    _, p = logrank_test(times["perturbed"], left["perturbed"], times["plain"], left["plain"])
    difference = bootstrap_interval(left["perturbed"].astype(float) - left["plain"],
                                    np.mean, clusters=trajectories)
    return Check.at_least(difference, ABOVE_ZERO,
                          f"{detail}; escaped within {config.escape_steps:,} steps: plain "
                          f"{left['plain'].mean():.0%}, perturbed {left['perturbed'].mean():.0%}; "
                          f"Kaplan–Meier median steps plain {medians['plain']:,.0f}, perturbed "
                          f"{medians['perturbed']:,.0f} (log-rank p = {p:.2g}); the difference")


def check_gd_finds_minima(config: SaddlesConfig, result: dict) -> Check:
    end = result["gd_end"]
    done = np.asarray(end["converged"], dtype=bool)
    index, loss = np.asarray(end["index"]), np.asarray(end["loss"])
    flat = (index > 0) & (np.asarray(end["lowest_eigenvalue"])
                          > -strict_curvature(config, config.gd_steps))
    judged = done & ~flat
    detail = (f"{done.sum()} of {len(done)} GD runs converged within {config.gd_steps:,} steps "
              f"(‖∇L‖ < {config.minimum_gradient:g}, loss at rest over the last "
              f"{config.converged_window:.0%}): {np.sum(done & (index == 0))} at a minimum "
              f"({np.sum(done & (loss < 1e-6))} at loss < 1e-6), {np.sum(judged & (index > 0))} "
              f"at a strict saddle, {np.sum(done & flat)} still passing a saddle too flat to "
              f"leave within the budget (λ_min > −{strict_curvature(config, config.gd_steps):.2g})")
    if not judged.any():
        return Check.not_checked(None, detail + "; none at a minimum or a strict saddle")
    return Check.at_least(fraction_interval(index[judged] == 0), 0.9,
                          detail + "; the fraction at a minimum")


CLAIMS = (
    Claim("critical points with higher loss have a higher index",
          "critical points with higher error have a larger "
          "fraction of negative Hessian eigenvalues (Dauphin et al. 2014, Figure 1)",
          "ρ's interval lies above 0", check_index_rises_with_loss,
          test="Spearman ρ(loss, index) over the critical points found; 95% cluster bootstrap"
          " by GD trajectory (the Newton runs from one trajectory share it); holds when it lies"
          " above 0, fails when below", id="higher-loss-higher-index"),
    Claim("perturbed GD escapes saddles", "GD with occasional small random perturbations "
          "escapes saddle points efficiently (Jin et al. 2017, Theorem 3)",
          "the difference's interval lies above 0", check_perturbed_escapes,
          test="on the strict saddles (λ_min ≤ −ln(1/r)/(lr·escape_steps)), the fraction "
          "perturbed GD escapes within escape_steps minus the fraction plain GD escapes, paired"
          " by saddle; 95% cluster bootstrap by GD trajectory; holds when it lies above 0, "
          "fails when below; Kaplan–Meier medians and the log-rank test beside it",
          id="perturbed-gd-escapes-saddles"),
    Claim("GD's end points are minima", "GD from a random start converges to a minimiser, "
          "not a saddle, almost surely (Lee et al. 2016)",
          "the fraction's interval lies at or above 0.9", check_gd_finds_minima,
          test="among the GD runs that converged (‖∇L‖ < 1e-4 at the end and the loss at rest "
          "over the last 10% of the budget) at a minimum or at a saddle strict at the budget "
          "(λ_min ≤ −ln(1/r)/(lr·gd_steps): Lee et al. assume strict saddles; by a flatter one "
          "GD is still passing), the fraction at a minimum; 95% Wilson interval; holds at or "
          "above 0.9, fails below; not checked when none", id="gds-end-points-are-minima"),
)


def figures(config: SaddlesConfig, result: dict) -> dict:
    critical, end = result["critical"], result["gd_end"]
    fig1, ax = new_figure()
    ax.scatter(critical["loss"], critical["index"], s=14, alpha=0.6,
               label="critical points (Newton)")
    stopped = np.asarray(end["converged"], dtype=bool)
    ax.scatter(np.asarray(end["loss"])[stopped], np.asarray(end["index"])[stopped], s=30,
               marker="x", color="tab:red", label="converged GD end points")
    ax.set(xscale="symlog", xlabel="loss", ylabel="index (fraction of λ < 0)",
           title="Index against loss (Dauphin et al. 2014, Figure 1)")
    ax.set_xscale("symlog", linthresh=1e-6)
    ax.legend(fontsize=8)

    fig2, (ax_loss, ax_grad) = new_figure(ncols=2)
    for loss, norm in zip(result["trace_loss"], result["trace_gradient_norm"], strict=True):
        ax_loss.plot(result["trace_steps"], loss, lw=1)
        ax_grad.plot(result["trace_steps"], norm, lw=1)
    ax_loss.set(yscale="log", xlabel="GD step", ylabel="loss",
                title="GD trajectories: plateaus are saddles")
    ax_grad.set(yscale="log", xlabel="GD step", ylabel="‖∇L‖",
                title="…where the gradient dips and GD crawls")

    fig3, ax = new_figure()
    for rule in ("plain", "perturbed"):
        losses = np.asarray(result["escape"][rule]["loss"], dtype=float)
        if len(losses):
            drop = 1 - losses / losses[:, :1]
            band(ax, np.arange(drop.shape[1]) * 10, np.maximum(drop, 1e-16), f"{rule} GD")
    ax.axhline(config.escape_drop, color="black", ls=":", lw=1)
    ax.set(yscale="log", xlabel="GD step from the saddle", ylabel="1 − loss / saddle loss",
           title="Leaving a saddle: plain vs perturbed GD (band = saddles)")
    ax.legend()
    return {"index_vs_loss": fig1, "trajectories": fig2, "escape": fig3}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "index_vs_loss": ("Index (fraction of negative Hessian eigenvalues) against loss at the "
                      "critical points Newton's method finds, and at converged GD end points (red "
                      "×): the higher the loss, the higher the index (Dauphin et al. 2014, Figure "
                      "1)."),
    "trajectories": ("Loss and gradient norm along GD trajectories: the loss plateaus are saddles, "
                     "where the gradient dips and GD crawls."),
    "escape": ("Fractional loss drop after a saddle for plain and perturbed GD (band = saddles; "
               "dotted: the drop that counts as an escape): perturbations leave strict saddles "
               "sooner (Jin et al. 2017)."),
}


def work(config: SaddlesConfig, seeds: int) -> float:
    """Cost model units: µs (fitted at default); one problem of `starts` rows (no seeds)."""
    point = config.samples * config.hidden * (config.inputs + 4)  # multiply-adds of one ∇L(θ)
    gd = config.gd_steps * (500 + config.starts * point / 1e4)
    newton = config.newton_steps * (
        5e4 + config.starts * config.snapshots * n_params(config) * point / 1e4)  # Hessians
    return gd + newton + 2 * config.escape_steps * 1_000  # plain and perturbed GD at the saddles


EXPERIMENT = Experiment(
    name="saddles",
    section="Dauphin et al. 2014; Jin et al. 2017",
    title="Saddles and local minima: index against loss, and escaping saddles",
    version=3,
    config_class=SaddlesConfig,
    scales={
        "quick": {"starts": 24, "gd_steps": 4_000, "snapshots": 4, "newton_steps": 60,
                  "escape_steps": 2_000},
        "default": {},
        "paper": {"starts": 256, "snapshots": 10},
    },
    seeds={"quick": 1, "default": 1, "paper": 1},
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
