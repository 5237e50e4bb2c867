"""Deep linear networks: plateaus, depth and the initialisation that removes them.

Saxe, McClelland & Ganguli 2013/14, "Exact solutions to the nonlinear dynamics of learning in
deep linear neural networks". A linear teacher T = U·diag(s)·Vᵀ (n × n, s from
3 down to 0.3) is learned by W = W_N ⋯ W_1 with full-batch gradient descent. On whitened inputs
(Σ_xx = I) the mean squared error is exactly ½‖T − W‖²_F, so that is the loss trained here.

- From small random weights the net sits on a plateau that lengthens steeply with depth; the
  scaled Gaussian N(0, 1/n) also slows down with depth. Orthogonal (balanced) weights learn in a
  time that stays finite as the depth grows, each depth at its best learning rate. Both are
  judged on one statistic: the learning time at the deepest depth over that at depth 2, the
  shallowest net with a hidden layer (depth 1 is linear regression, with no plateau at all).
- From a small decoupled init (W's singular vectors aligned with T's) every mode obeys its own
  scalar equation du/dt = η_layer·N·u^(2−2/N)·(s − u): the modes are learned one by one, the
  strongest first, in sigmoidal stages. The measured mode strengths are compared with it.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt, field_validator
from scipy.integrate import solve_ivp

from gradfail.experiment import Check, Claim, Config, Experiment, RunContext, known_name
from gradfail.maths.statistics import mean_interval
from gradfail.nets.deep import INITS, initial_weights
from gradfail.plotting import log_ticks, new_figure


class DeepLinearConfig(Config):
    """Spec B2: width 32, depths 1–32, s linearly spaced 3 → 0.3, lr tuned per depth."""

    width: PositiveInt = Field(32, description="n: inputs, hidden units and outputs")
    largest_mode: PositiveFloat = Field(3.0, description="s_1, the teacher's top singular value")
    smallest_mode: PositiveFloat = Field(0.3, description="s_n, its smallest")
    depths: list[PositiveInt] = Field([1, 2, 4, 8, 16, 32], min_length=2)
    inits: list[known_name("init", INITS)] = Field(["small", "lecun", "orthogonal"],
                                                   min_length=1)
    scaled_lrs: list[PositiveFloat] = Field(
        [0.005, 0.01, 0.02, 0.05, 0.1, 0.2], min_length=1,
        description="the grid of lr × depth; each depth and init keeps its best")
    steps: PositiveInt = Field(10_000, description="GD steps: the budget")
    criterion: float = Field(0.01, gt=0, lt=1, description="loss ≤ criterion × ½‖T‖²")
    eval_every: PositiveInt = Field(10, description="steps between stored points of a curve")
    mode_depths: list[PositiveInt] = Field([2, 4], min_length=1,
                                           description="depths of the decoupled-init runs")
    mode_start: float = Field(0.01, gt=0, lt=1, description="u_α(0) of every mode")
    mode_scaled_lr: PositiveFloat = Field(0.02, description="lr × depth of those runs")
    mode_steps: PositiveInt = Field(3_000)

    @field_validator("smallest_mode")
    @classmethod
    def _modes(cls, smallest: float, info) -> float:
        if smallest >= info.data.get("largest_mode", math.inf):
            raise ValueError("smallest_mode must be below largest_mode")
        return smallest


# --------------------------------------------------------------------------------------------
# The teacher and the product network.


def teacher(config: DeepLinearConfig, ctx: RunContext) -> dict:
    """Per seed: random orthogonal U, V and T = U·diag(s)·Vᵀ, s linear from s_1 to s_n."""
    n, generator = config.width, ctx.generator("teacher")
    u, _ = torch.linalg.qr(torch.randn(ctx.n_seeds, n, n, generator=generator,
                                       device=ctx.device))
    v, _ = torch.linalg.qr(torch.randn(ctx.n_seeds, n, n, generator=generator,
                                       device=ctx.device))
    s = torch.linspace(config.largest_mode, config.smallest_mode, n, device=ctx.device)
    return {"u": u, "v": v, "s": s, "t": u @ torch.diag_embed(s).expand(ctx.n_seeds, n, n)
            @ v.transpose(1, 2)}


def product(layers: list[torch.Tensor]) -> torch.Tensor:
    """W = W_N ⋯ W_1 per model; layers[0] is W_1 (models, n, n)."""
    total = layers[0]
    for layer in layers[1:]:
        total = layer @ total
    return total


def half_squared_error(layers: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """½‖T − W‖²_F per model: the whitened-input mean squared error."""
    return 0.5 * (target - product(layers)).square().sum((1, 2))


def gradient_descent(layers: list[torch.Tensor], target: torch.Tensor, lrs: torch.Tensor,
                     steps: int, advance, every: int = 1, observe=None) -> dict:
    """Full-batch GD with a learning rate per model (models are independent, so weighting each
    model's loss by its lr and stepping by 1 is GD at that lr). The loss of every step, and
    `observe(params)` every `every` steps."""
    params = [layer.clone().requires_grad_(True) for layer in layers]
    optimiser = torch.optim.SGD(params, lr=1.0)
    losses, observed = [], []
    for step in range(steps + 1):
        loss = half_squared_error(params, target)
        losses.append(loss.detach().clone())
        if observe is not None and step % every == 0:
            observed.append(observe(params))
        if step == steps:
            break
        optimiser.zero_grad(set_to_none=True)
        (lrs * torch.nan_to_num(loss, nan=0.0, posinf=0.0)).sum().backward()
        optimiser.step()
        advance(1)
    return {"loss": torch.stack(losses, 1), "observed": observed}


# --------------------------------------------------------------------------------------------
# Time to criterion against depth, per init, at the best learning rate of a grid.


def time_to_criterion(config: DeepLinearConfig, depth: int, ctx: RunContext) -> dict:
    """All inits × lrs × seeds as one batch of models; lr per layer = (lr × depth) / depth."""
    task = teacher(config, ctx)
    n, inits, lrs = config.width, config.inits, config.scaled_lrs
    grid = [(init, lr, seed) for init in inits for lr in lrs for seed in range(ctx.n_seeds)]
    generator = ctx.generator("init", depth)
    layers = [torch.cat([initial_weights(init, "linear", ctx.n_seeds, n, n, generator,
                                         ctx.device) for init in inits for _ in lrs])
              for _ in range(depth)]
    target = task["t"][[seed for *_, seed in grid]]
    per_model_lr = torch.tensor([lr / depth for _, lr, _ in grid], device=ctx.device)
    with ctx.track(f"deep linear: depth {depth}", config.steps) as advance:
        run = gradient_descent(layers, target, per_model_lr, config.steps, advance)
    loss = run["loss"].cpu().numpy().reshape(len(inits), len(lrs), ctx.n_seeds, -1)
    zero_map = 0.5 * float(task["s"].square().sum())
    below = loss <= config.criterion * zero_map
    first = np.where(below.any(-1), below.argmax(-1), np.nan)
    shown = np.arange(0, config.steps + 1, config.eval_every)
    best = np.nanargmin(np.where(np.isnan(first), np.inf, first), axis=1)  # (inits, seeds)
    pick = np.take_along_axis
    return {"depth": depth, "steps": shown, "zero_map_loss": zero_map,
            "steps_to_criterion": {init: pick(first[i], best[i][None], 0)[0]
                                   for i, init in enumerate(inits)},
            "best_scaled_lr": {init: [lrs[j] if not np.isnan(first[i, j, s]) else None
                                      for s, j in enumerate(best[i])]
                               for i, init in enumerate(inits)},
            "best_curve": {init: loss[i, best[i], np.arange(ctx.n_seeds)][:, shown] / zero_map
                           for i, init in enumerate(inits)}}


# --------------------------------------------------------------------------------------------
# Stage-like learning of the modes, against the analytic equation.


def decoupled_init(task: dict, depth: int, start: float, ctx: RunContext) -> list[torch.Tensor]:
    """W_1 = a·R_1·Vᵀ, W_l = a·R_l·R_(l−1)ᵀ, W_N = a·U·R_(N−1)ᵀ with a = u(0)^(1/N):
    W = u(0)·U·Vᵀ, every mode at strength u(0), balanced across layers (Saxe et al. §3)."""
    n = task["u"].shape[-1]
    scale = start ** (1 / depth)
    generator = ctx.generator("rotations", depth)
    rotations = [torch.linalg.qr(torch.randn(ctx.n_seeds, n, n, generator=generator,
                                             device=ctx.device))[0] for _ in range(depth - 1)]
    inner = [task["v"].transpose(1, 2), *(r.transpose(1, 2) for r in rotations)]
    outer = [*rotations, task["u"]]
    return [scale * a @ b for a, b in zip(outer, inner, strict=True)]


def mode_equation(s: np.ndarray, depth: int, lr: float, start: float, steps) -> np.ndarray:
    """u_α(t) from du/dt = lr·N·u^(2−2/N)·(s_α − u), t in GD steps: (modes, len(steps))."""
    def rate(_, u):
        return lr * depth * np.abs(u) ** (2 - 2 / depth) * (s - u)
    solution = solve_ivp(rate, (0, steps[-1]), np.full_like(s, start), t_eval=steps,
                         rtol=1e-8, atol=1e-10, method="LSODA")
    return solution.y


def stage_like_learning(config: DeepLinearConfig, depth: int, ctx: RunContext) -> dict:
    task = teacher(config, ctx)
    lr = config.mode_scaled_lr / depth
    layers = decoupled_init(task, depth, config.mode_start, ctx)

    def strengths(params):  # u_α = U_αᵀ W V_α
        with torch.no_grad():
            return torch.diagonal(task["u"].transpose(1, 2) @ product(params) @ task["v"],
                                  dim1=1, dim2=2).cpu()

    with ctx.track(f"deep linear: modes at depth {depth}", config.mode_steps) as advance:
        run = gradient_descent(layers, task["t"], torch.full((ctx.n_seeds,), lr,
                                                             device=ctx.device),
                               config.mode_steps, advance, config.eval_every, strengths)
    measured = torch.stack(run["observed"], -1).numpy()  # (seeds, modes, steps)
    steps = np.arange(0, config.mode_steps + 1, config.eval_every)
    s = task["s"].cpu().numpy()
    return {"depth": depth, "steps": steps, "s": s, "measured": measured,
            "predicted": mode_equation(s, depth, lr, config.mode_start, steps.astype(float))}


def run(config: DeepLinearConfig, ctx: RunContext) -> dict:
    return {"depths": [ctx.part(f"time to criterion, depth {d}",
                                lambda d=d: time_to_criterion(config, d, ctx))
                       for d in config.depths],
            "modes": [ctx.part(f"modes, depth {d}", lambda d=d: stage_like_learning(config, d, ctx))
                      for d in config.mode_depths]}


# --------------------------------------------------------------------------------------------
# Claims and figures.


def median_time(result: dict, init: str) -> np.ndarray:
    """Median over seeds of the best steps to criterion per depth; NaN where most never got
    there within the budget."""
    out = []
    for run in result["depths"]:
        times = np.asarray(run["steps_to_criterion"][init], dtype=float)
        out.append(np.median(times) if np.mean(np.isnan(times)) < 0.5 else np.nan)
    return np.array(out)


def slowdown(config: DeepLinearConfig, result: dict, init: str) -> np.ndarray | None:
    """Per seed: log10 of (steps to criterion at the deepest depth) / (at depth 2), each at
    its best lr; a run that never got there counts as budget + 1 steps, a lower bound. None
    when depth 2 is missing or some seed did not reach the criterion at depth 2."""
    if 2 not in config.depths or init not in config.inits:
        return None
    times = [np.asarray(result["depths"][i]["steps_to_criterion"][init], dtype=float)
             for i in (config.depths.index(2), -1)]
    if np.isnan(times[0]).any():
        return None
    deepest = np.where(np.isnan(times[1]), config.steps + 1, times[1])
    return np.log10(deepest / times[0])


def times_by_depth(config: DeepLinearConfig, result: dict, init: str) -> str:
    return f"{init}: median steps by depth " + ", ".join(
        f"{d}: {t:,.0f}" if np.isfinite(t) else f"{d}: not within {config.steps:,}"
        for d, t in zip(config.depths, median_time(result, init), strict=True))


def check_orthogonal(config: DeepLinearConfig, result: dict) -> Check:
    ratios = slowdown(config, result, "orthogonal")
    if ratios is None:
        return Check.not_checked(None, "needs the orthogonal init, depth 2, and every seed "
                                 "reaching the criterion there")
    best_lrs = [np.median([lr for lr in run["best_scaled_lr"]["orthogonal"] if lr is not None]
                          or [np.nan]) for run in result["depths"]]
    edge = (" (the grid's largest at every depth: the best lr may lie beyond it; gradfail's "
            "earlier measurement saw 18 → 171 steps from depth 2 to 32)" if all(
                lr == max(config.scaled_lrs) for lr in best_lrs) else "")
    return Check.at_most(mean_interval(ratios), math.log10(2),
                         f"{times_by_depth(config, result, 'orthogonal')}; best lr × depth "
                         + ", ".join(f"{lr:g}" for lr in best_lrs) + edge + "; log10 of depth "
                         f"{config.depths[-1]} / depth 2")


def check_random(config: DeepLinearConfig, result: dict) -> Check:
    found = {init: ratios for init in ("small", "lecun")
             if (ratios := slowdown(config, result, init)) is not None}
    if not found:
        return Check.not_checked(None, "needs the 'small' or 'lecun' init, depth 2, and every "
                                 "seed reaching the criterion there")
    slower = np.min(list(found.values()), axis=0)  # each seed: the init that slowed down less
    return Check.at_least(mean_interval(slower), 1.0,
                          "; ".join(times_by_depth(config, result, init) for init in found)
                          + f"; log10 of depth {config.depths[-1]} / depth 2, the smaller of "
                          f"{' and '.join(found)} per seed")


def check_modes(config: DeepLinearConfig, result: dict) -> Check:
    errors, ordered = [], []
    for run in result["modes"]:
        measured, predicted = np.asarray(run["measured"]), np.asarray(run["predicted"])
        errors.append(np.abs(measured - predicted[None]).max((1, 2)) / config.largest_mode)
        halves = [np.argmax(row >= s / 2, axis=-1) for row, s in
                  zip(np.moveaxis(measured, 1, 0), run["s"], strict=True)]
        learnt = np.array(halves).T  # (seeds, modes), 0 where not yet half learnt
        reached = learnt[:, np.median(learnt, axis=0) > 0]
        ordered.append(bool((np.diff(reached, axis=1) >= 0).all()))
    worst = np.max(errors, axis=0)  # per seed, over depths
    return Check.at_most(mean_interval(worst), 0.05,
                         "largest |measured − predicted| / s_1 over modes and steps, worst seed: "
                         + ", ".join(f"depth {r['depth']}: {e.max():.4f}"
                                     for r, e in zip(result["modes"], errors, strict=True))
                         + f"; half-learnt in order of strength: {all(ordered)}; per seed")


CLAIMS = (
    Claim("orthogonal inits learn in a depth-independent time",
          "orthogonal initial conditions give "
          "a finite, depth-independent learning delay (Saxe et al. 2014, abstract, §4)",
          "the ratio's interval lies at or below 2 (log10 2)", check_orthogonal,
          test="per seed, log10 of the best-lr steps to 1% loss at the deepest depth over those "
          "at depth 2 (never: the budget + 1, a lower bound); 95% t-interval over seeds; "
          "holds at or below log10 2, fails above. The best lr is each instance's own: full-"
          "batch GD is deterministic, so its time at each lr is exact, not a noisy pick",
          id="orthogonal-depth-independent-learning-time"),
    Claim("random inits slow down with depth", "scaled random Gaussian initialisations do "
          "not: learning time grows with depth (Saxe et al. 2014, §5)",
          "the ratio's interval lies at or above 10 (log10 10 = 1)", check_random,
          test="the same statistic as the orthogonal claim, for N(0, 0.01²) and N(0, 1/n), the "
          "smaller of the two per seed; 95% t-interval over seeds; holds at or above 1 "
          "(10×), fails below", id="random-inits-slow-down-with-depth"),
    Claim("modes are learnt in stages, as predicted", "each mode follows τ·du/dt = N·u^(2−2/N)·"
          "(s − u): sigmoidal stages, strongest first (Saxe et al. 2014, §2–3)",
          "the deviation's interval lies at or below 0.05", check_modes,
          test="per seed, the largest |measured − predicted| / s_1 over modes, steps and mode "
          "depths from a small decoupled init; 95% t-interval over seeds; holds at or below "
          "0.05, fails above; the order in which modes reach s/2 is reported beside it",
          id="modes-learnt-in-stages-as-predicted"),
)


def figures(config: DeepLinearConfig, result: dict) -> dict:
    fig1, (ax_time, ax_curve) = new_figure(ncols=2)
    for init in config.inits:
        times = median_time(result, init)
        line = ax_time.plot(config.depths, times, "o-", label=init)[0]
        never = ~np.isfinite(times)
        ax_time.plot(np.array(config.depths)[never], np.full(never.sum(), config.steps), "x",
                     color=line.get_color(), ms=9)
    ax_time.axhline(config.steps, color="black", ls=":", lw=1)
    ax_time.set(yscale="log", xlabel="depth N", ylabel="GD steps (median over seeds)",
                title=f"Steps to {config.criterion:.0%} of the loss (best lr; × = not within "
                      "budget)")
    log_ticks(ax_time, config.depths)
    ax_time.legend()
    deepest = result["depths"][-1]
    for init in config.inits:
        curve = np.median(np.asarray(deepest["best_curve"][init], dtype=float), axis=0)
        ax_curve.plot(deepest["steps"], curve, label=init)
    ax_curve.set(yscale="log", xlabel="GD step", ylabel="loss / ½‖T‖²",
                 title=f"Learning curves at depth {deepest['depth']} (best lr, median)")
    ax_curve.legend()

    fig2, axes = new_figure(ncols=len(result["modes"]), width=4.6)
    axes = np.atleast_1d(axes)
    colours = matplotlib.colormaps["viridis"]
    for ax, run in zip(axes, result["modes"], strict=True):
        s = np.asarray(run["s"])
        for alpha, strength in enumerate(s):
            colour = colours(alpha / max(len(s) - 1, 1))
            ax.plot(run["steps"], np.asarray(run["measured"])[0, alpha], color=colour, lw=1.4)
            ax.plot(run["steps"], np.asarray(run["predicted"])[alpha], "--", color="black",
                    lw=0.7)
        ax.set(xlabel="GD step", ylabel="mode strength u_α = u_αᵀ W v_α",
               title=f"depth {run['depth']}, s from {s[0]:g} (dark) to {s[-1]:g} (light)")
    fig2.suptitle("Stage-like learning from a small decoupled init: measured (colour, seed 0) "
                  "vs the mode equation (dashed)")
    return {"time_vs_depth": fig1, "modes": fig2}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "time_vs_depth": ("GD steps to the loss criterion against depth at each init's best learning "
                      "rate (× = not within the budget), and the learning curves at the deepest "
                      "depth: orthogonal inits take about as long at every depth, random ones slow "
                      "down (Saxe et al. 2014)."),
    "modes": ("Each mode's strength over GD steps from a small decoupled init (colour, seed 0) and "
              "the mode equation's prediction (dashed): modes are learnt in sigmoidal stages, "
              "strongest first (Saxe et al. 2014, §2–3)."),
}


def work(config: DeepLinearConfig, seeds: int) -> float:
    """Cost model units: µs (fitted at default): GD steps, 130 + per layer 55 + arithmetic."""
    def descent(depth: int, models: int, steps: int) -> float:
        return steps * (130 + depth * (55 + 3 * models * config.width**3 / 3e4))
    models = len(config.inits) * len(config.scaled_lrs) * seeds
    return (sum(descent(d, models, config.steps) for d in config.depths)
            + sum(descent(d, seeds, config.mode_steps) for d in config.mode_depths))


EXPERIMENT = Experiment(
    name="deep_linear",
    section="Saxe, McClelland & Ganguli 2014",
    title="Deep linear networks: plateaus against depth, and the modes learnt in stages",
    version=2,
    config_class=DeepLinearConfig,
    scales={
        "quick": {"width": 8, "depths": [1, 2, 4, 8], "steps": 1_500,
                  "scaled_lrs": [0.02, 0.05, 0.1, 0.2], "mode_depths": [2],
                  "mode_steps": 1_500},
        "default": {"width": 16, "steps": 4_000},
        "paper": {},
    },
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
