"""Optimiser choice, measured the way optimiser benchmarks measure it.

DeepOBS (Schneider, Balles & Hennig 2019): per problem, the best final performance, the steps to
a threshold, and the sensitivity to the learning rate; Schmidt, Schneider & Hennig 2021 ("no
optimiser dominates"). SGD, momentum, Nesterov, Adagrad, RMSprop, Adam and
AdamW run over one log grid of learning rates on a set of problems: rotated ill-conditioned
quadratics (condition number swept), logistic regression and an MLP on digits, and two of
gradfail's own failure problems (parity at d = 10, the 3-tap convolution of §4's
piecewise-linear curves). The grid × seeds of an optimiser train as one batched model, one
parameter group per learning rate, so every update is torch's own.

Wilson et al. 2017's over-parameterised linear classification is included and checked: every
method fits the training set, but the adaptive ones converge to w ∝ sign(Xᵀy) and label every
test point positive (test error 1 − p), where gradient descent finds the max-margin-like
solution (test error 0).

A best learning rate is picked on some seeds and judged on the others (picking and judging on
the same noisy runs would flatter every optimiser); on a deterministic problem (full batch from
a fixed start: every seed runs the same) the pick is exact and so is the judged number.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt, field_validator

from gradfail.experiment import Check, Claim, Config, Experiment, RunContext, known_name
from gradfail.maths.statistics import Interval, fraction_interval, mean_interval
from gradfail.nets.problems import (
    Problem,
    adaptive_methods_example,
    classifier,
    convolution,
    parity,
    quadratic,
)
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
ABOVE_ZERO = math.ulp(0.0)  # "fewer steps", "beaten": strictly, not a tie


class OptimizersConfig(Config):
    """Problem sizes are ours (DeepOBS's problems need downloads); the metrics are theirs."""

    optimizers: list[known_name("optimiser", OPTIMIZERS)] = Field(list(OPTIMIZERS), min_length=1)
    lrs: list[PositiveFloat] = Field([10.0**e for e in range(-5, 1)] + [3.0], min_length=2,
                                     description="the learning-rate grid (log spaced)")
    problems: list[known_name("problem", PROBLEMS)] = Field(list(PROBLEMS), min_length=1)
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
# The problems (gradfail.nets.problems), at this config's sizes.


def problems(config: OptimizersConfig, ctx: RunContext) -> list[Problem]:
    batch = config.batch_size
    build = {
        "quadratic": lambda: [quadratic(kappa, config.quadratic_dim, ctx)
                              for kappa in config.condition_numbers],
        "logistic": lambda: [classifier("logistic", [64, 10], 0.08, batch, ctx)],
        "mlp": lambda: [classifier("mlp", [64, 128, 128, 10], 0.05, batch, ctx)],
        "parity": lambda: [parity(config.parity_d, batch, ctx)],
        "convolution": lambda: [convolution(batch, ctx)],
    }
    return [problem for name in config.problems for problem in build[name]()]


# --------------------------------------------------------------------------------------------
# One optimiser on one problem, the lr grid × seeds as one batch of models; DeepOBS's numbers.


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


def summaries(config: OptimizersConfig, result: dict) -> dict[str, dict[str, dict]]:
    """{problem: {optimizer: summary}}."""
    summary_of: dict[str, dict[str, dict]] = {}
    for run in result["sweeps"]:
        summary_of.setdefault(run["problem"], {})[run["optimizer"]] = summary(run, config.lrs)
    return summary_of


def fastest(by_optimizer: dict[str, dict]) -> str | None:
    """The optimiser with the fewest steps to the threshold, ties (steps are measured every
    eval_every) broken by the best final error; None when none reaches it."""
    name = min(by_optimizer, key=lambda o: (by_optimizer[o]["steps_to_threshold"],
                                            by_optimizer[o]["best_final"]))
    return name if math.isfinite(by_optimizer[name]["steps_to_threshold"]) else None


# --------------------------------------------------------------------------------------------
# Judging speed without flattering it: the lr picked on some seeds, the steps judged on others.


def picked_and_judged(n_seeds: int) -> tuple[slice, slice]:
    """The first ⌊n/2⌋ seeds (at least one) pick the lr; the others are judged."""
    cut = max(n_seeds // 2, 1)
    return slice(0, cut), slice(cut, None)


def steps_at_picked_lr(run: dict) -> tuple[float, np.ndarray]:
    """The steps to the threshold at the lr that reached it fastest on the picking seeds
    (median; ties by the median final error): that median, and the judged seeds' steps. A
    seed that never reaches it counts as budget + eval_every, a lower bound."""
    errors, steps = np.asarray(run["errors"], dtype=float), np.asarray(run["steps"])
    censored = steps[-1] + (steps[-1] - steps[-2])
    first = np.where((errors <= run["threshold"]).any(-1),
                     steps[(errors <= run["threshold"]).argmax(-1)], censored)  # (lrs, seeds)
    pick, judge = picked_and_judged(errors.shape[1])
    lr = min(range(len(first)), key=lambda i: (np.median(first[i, pick]),
                                               np.median(errors[i, pick, -1])))
    return float(np.median(first[lr, pick])), first[lr, judge].astype(float)


def deterministic(run: dict) -> bool:
    """Every seed ran the same curve at every lr (full batch from a fixed start)."""
    errors = np.nan_to_num(np.asarray(run["errors"], dtype=float), posinf=1e300)
    return bool((np.ptp(errors, axis=1) == 0).all())


def over_judged_seeds(values: np.ndarray, runs: list[dict]) -> Interval:
    """A t-interval over the judged seeds, or exact when every run involved is deterministic
    (every seed then gives the same value)."""
    if all(deterministic(run) for run in runs):
        value = float(values[0])
        return Interval(value, value, value, 1.0, 1, "exact (deterministic runs)")
    return mean_interval(values)


# --------------------------------------------------------------------------------------------
# Wilson et al. 2017, §3.3: adaptive methods on an over-parameterised linear problem.

WILSON_LRS = {"sgd": 0.5, "adagrad": 0.1, "rmsprop": 1e-3, "adam": 1e-3}  # spec B7


def run_adaptive_methods_example(config: OptimizersConfig, ctx: RunContext) -> dict:
    """Full-batch least squares from w = 0 with the learning rates of WILSON_LRS; per (p, seed)
    the training loss and training and test error of each method."""
    out: dict = {"p": config.wilson_p, "lrs": WILSON_LRS}
    generator = ctx.generator("wilson")
    examples = [adaptive_methods_example(config.wilson_points, config.wilson_test, p, generator)
                for p in config.wilson_p for _ in range(ctx.n_seeds)]
    xs, ys, test_xs, test_ys = zip(*examples, strict=True)
    width = max(x.shape[1] for x in xs)
    x = torch.stack([torch.nn.functional.pad(x, (0, width - x.shape[1])) for x in xs])
    y, test_x, test_y = torch.stack(ys), torch.stack(test_xs), torch.stack(test_ys)
    with ctx.track("optimizers: Wilson et al.", len(WILSON_LRS) * config.wilson_steps) as advance:
        for name, lr in WILSON_LRS.items():
            w = torch.zeros(len(examples), width, 1, device=ctx.device, requires_grad=True)
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
    sweeps = [ctx.part(f"{optimizer} on {problem.name}",
                       lambda p=problem, o=optimizer: sweep(config, p, o, ctx))
              for problem in problems(config, ctx) for optimizer in config.optimizers]
    return {"sweeps": sweeps,
            "wilson": ctx.part("wilson", lambda: run_adaptive_methods_example(config, ctx))}


# --------------------------------------------------------------------------------------------
# Claims: measured effects with their size, beside the published statement or the folklore.


def check_adaptive_methods_example(config: OptimizersConfig, result: dict) -> Check:
    wilson, gaps, parts = result["wilson"], [], []
    for i, p in enumerate(config.wilson_p):
        gd = np.asarray(wilson["sgd"]["test_error"])[i]
        adaptive = {name: np.asarray(wilson[name]["test_error"])[i] for name in ADAPTIVE}
        gaps.append((np.min(list(adaptive.values()), axis=0) - gd) / (1 - p))
        fitted = all(np.asarray(wilson[m]["train_error"])[i].max() == 0 for m in WILSON_LRS)
        parts.append(f"p={p}: GD {gd.mean():.3f}, " + ", ".join(
            f"{name} {error.mean():.3f}" for name, error in adaptive.items())
            + f" (1 − p = {1 - p:.2f}); train error 0 for all: {fitted}")
    return Check.at_least(mean_interval(np.concatenate(gaps)), 0.9,
                          "; ".join(parts) + "; per (p, seed), the least adaptive test error "
                          "minus GD's, over 1 − p")


def check_no_winner(config: OptimizersConfig, result: dict) -> Check:
    runs = {(run["problem"], run["optimizer"]): run for run in result["sweeps"]}
    problems_run = list(dict.fromkeys(problem for problem, _ in runs))
    if len(problems_run) < 2 or len(config.optimizers) < 2:
        return Check.not_checked(None, "needs two problems and two optimisers")
    picked = {key: steps_at_picked_lr(run) for key, run in runs.items()}
    wins = {name: sum(name == min(config.optimizers, key=lambda o: picked[problem, o][0])
                      for problem in problems_run) for name in config.optimizers}
    leader = max(wins, key=wins.get)  # picked on the picking seeds, judged on the others
    trails = np.max([np.log10(picked[problem, leader][1] / np.min(
        [picked[problem, other][1] for other in config.optimizers if other != leader], axis=0))
        for problem in problems_run], axis=0)
    return Check.at_least(over_judged_seeds(trails, list(runs.values())), ABOVE_ZERO,
                          f"problems won on the picking seeds: {wins}; the leader, {leader}, on "
                          "its worst problem: log10 of its steps over the best other's")


def check_adam_robust(config: OptimizersConfig, result: dict) -> Check:
    if not {"adam", "sgd"} <= set(config.optimizers):
        return Check.not_checked(None, "needs adam and sgd")
    widths = {problem: (by_optimizer["adam"]["lrs_reaching"], by_optimizer["sgd"]["lrs_reaching"])
              for problem, by_optimizer in summaries(config, result).items()}
    wider = np.array([adam > sgd for adam, sgd in widths.values()])
    return Check.at_least(fraction_interval(wider), 0.5,
                          f"of {len(config.lrs)} grid lrs, those ending at the threshold, adam vs "
                          "sgd: " + ", ".join(f"{p}: {a} vs {s}" for p, (a, s) in widths.items())
                          + "; the fraction of problems where adam's range is wider")


def check_momentum(config: OptimizersConfig, result: dict) -> Check:
    if not {"momentum", "sgd"} <= set(config.optimizers) or "quadratic" not in config.problems:
        return Check.not_checked(None, "needs sgd, momentum and the quadratic")
    hardest = f"quadratic κ={config.condition_numbers[-1]:g}"
    runs = {run["optimizer"]: run for run in result["sweeps"] if run["problem"] == hardest}
    times = {name: steps_at_picked_lr(runs[name])[1] for name in ("sgd", "momentum")}
    speedup = np.log10(times["sgd"] / times["momentum"])
    return Check.at_least(over_judged_seeds(speedup, [runs["sgd"], runs["momentum"]]),
                          ABOVE_ZERO,
                          f"steps to f/f0 ≤ 1e-3 at κ = {config.condition_numbers[-1]:g}, each at"
                          f" its picked lr: sgd {np.median(times['sgd']):,.0f}, momentum "
                          f"{np.median(times['momentum']):,.0f}; log10 of sgd's over momentum's")


CLAIMS = (
    Claim("adaptive methods generalise worse (Wilson)", "on over-parameterised linear "
          "classification, GD reaches test error 0 and Adagrad, RMSprop, Adam reach 1 − p "
          "(Wilson et al. 2017, §3.3; gradfail's measurement: 0.45 at p = 0.55)",
          "the gap's interval lies at or above 0.9 of 1 − p", check_adaptive_methods_example,
          test="per (p, seed), the smallest adaptive test error minus GD's, divided by the "
          "published gap 1 − p; 95% t-interval over (p, seed); holds at or above 0.9, fails "
          "below; training errors beside it", id="adaptive-methods-generalise-worse-wilson"),
    Claim("no optimiser dominates", "no method clearly dominates across problems (Schmidt, "
          "Schneider & Hennig 2021)", "the leader's deficit lies above 0", check_no_winner,
          test="the optimiser fastest to the threshold on most problems is the candidate; per "
          "judged seed, log10 of its steps over the best other optimiser's on its worst "
          "problem, each at the lr picked on the other seeds; 95% t-interval over the judged "
          "seeds (exact when every run is deterministic); holds when it lies above 0 (beaten "
          "somewhere), fails when below", id="no-optimiser-dominates"),
    Claim("Adam is less sensitive to its lr", "folklore: Adam works over a wider range of "
          "learning rates than SGD", "the fraction's interval lies at or above 1/2",
          check_adam_robust,
          test="over problems, the fraction on which adam has strictly more grid lrs whose "
          "median final error meets the threshold than sgd; 95% Wilson interval; holds at or "
          "above 1/2 (most problems), fails below", id="adam-is-less-sensitive-to-its-lr"),
    Claim("momentum helps when ill-conditioned", "heavy-ball momentum needs ~√κ steps where GD "
          "needs ~κ (Polyak 1964)", "the speed-up's interval lies above 0",
          check_momentum,
          test="at the largest κ, per judged seed, log10 of sgd's steps to f/f0 ≤ 1e-3 over "
          "momentum's, each at the lr picked on the other seeds; exact (the quadratic is "
          "deterministic) or a 95% t-interval; holds when it lies above 0, fails when below",
          id="momentum-helps-when-ill-conditioned"),
)


# --------------------------------------------------------------------------------------------
# Figures: DeepOBS's table, sensitivity and learning curves, κ sweep, Wilson's example.


def summary_table(config: OptimizersConfig, summary_of: dict[str, dict[str, dict]]):
    """DeepOBS's table as a figure: per problem and optimiser, the best final error (its lr),
    the steps to the threshold and how many grid lrs reach it; the best per problem in bold."""
    rows = list(summary_of)
    fig, ax = new_figure(width=2.2 + 1.9 * len(config.optimizers), height=0.5 + 0.42 * len(rows))
    ax.axis("off")
    cells = [[f"{by[o]['best_final']:.2g} @ {by[o]['best_lr']:g}\n"
              + (f"{by[o]['steps_to_threshold']:,.0f} steps"
                 if math.isfinite(by[o]["steps_to_threshold"]) else "never")
              + f", {by[o]['lrs_reaching']}/{len(config.lrs)} lrs" for o in config.optimizers]
             for by in summary_of.values()]
    table = ax.table(cellText=cells, rowLabels=rows, colLabels=config.optimizers,
                     loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1, 2.2)
    for i, problem in enumerate(rows, start=1):
        winner = fastest(summary_of[problem])
        if winner is not None:
            table[i, config.optimizers.index(winner)].get_text().set_fontweight("bold")
    ax.set_title("Best final error @ its lr; steps to the threshold; grid lrs reaching it "
                 "(bold: fastest, ties by final error)", fontsize=9, pad=24)
    return fig


def problem_panels(count: int, title: str):
    """A figure with `count` panels, three to a row (spare panels blank), and its axes."""
    columns = 3
    fig, grid = new_grid(-(-count // columns), columns, width=4.0, height=3.0)
    axes = list(grid.flat)
    for ax in axes[count:]:
        ax.axis("off")
    fig.suptitle(title)
    return fig, axes


def mark_threshold(ax, problem: str, runs: list[dict]) -> None:
    """The problem's threshold dotted over its runs, the error on a log scale."""
    ax.axhline(runs[0]["threshold"], color="black", ls=":", lw=1)
    ax.set(yscale="log", title=problem, ylabel=runs[0]["metric"])


def final_errors(run: dict) -> np.ndarray:
    """The final error at each lr of the grid, median over seeds."""
    return np.median(np.asarray(run["errors"], dtype=float)[:, :, -1], axis=1)


def lr_sensitivity(config: OptimizersConfig, runs_by_problem: dict[str, list[dict]]):
    fig, axes = problem_panels(len(runs_by_problem), "Final error against learning rate "
                               "(median over seeds; dotted: threshold)")
    for ax, (problem, runs) in zip(axes, runs_by_problem.items(), strict=False):
        for run in runs:
            ax.plot(config.lrs, np.clip(final_errors(run), 1e-12, 1e3), "o-", ms=3,
                    label=run["optimizer"])
        mark_threshold(ax, problem, runs)
        log_ticks(ax, config.lrs)
        ax.set_xlabel("learning rate")
    axes[0].legend(fontsize=7)
    return fig


def learning_curves(config: OptimizersConfig, runs_by_problem: dict[str, list[dict]]):
    fig, axes = problem_panels(len(runs_by_problem), "Learning curves at each optimiser's best "
                               "learning rate (median over seeds)")
    for ax, (problem, runs) in zip(axes, runs_by_problem.items(), strict=False):
        for colour, run in enumerate(runs):  # each optimiser's colour as in lr_sensitivity
            best = int(np.argmin(final_errors(run)))
            curve = np.median(np.asarray(run["errors"], dtype=float)[best], axis=0)
            ax.plot(run["steps"], np.clip(curve, 1e-12, 1e3),
                    color=f"C{colour}", label=f"{run['optimizer']} (lr {config.lrs[best]:g})")
        mark_threshold(ax, problem, runs)
        ax.set_xlabel("step")
        ax.legend(fontsize=6)
    return fig


def condition_number(config: OptimizersConfig, summary_of: dict[str, dict[str, dict]]):
    """Steps to the threshold against κ at each optimiser's best lr; None under two κ."""
    kappas = [k for k in config.condition_numbers if f"quadratic κ={k:g}" in summary_of]
    if len(kappas) <= 1:
        return None
    fig, ax = new_figure()
    for name in config.optimizers:
        steps = [summary_of[f"quadratic κ={k:g}"][name]["steps_to_threshold"] for k in kappas]
        ax.plot(kappas, np.where(np.isfinite(steps), steps, np.nan), "o-", label=name)
    ax.set(yscale="log", xlabel="condition number κ", ylabel="steps to f/f0 ≤ 1e-3",
           title="Ill-conditioned quadratic: steps at the best lr")
    log_ticks(ax, kappas)
    ax.legend(fontsize=7)
    return fig


def wilson_errors(config: OptimizersConfig, wilson: dict):
    """Each method's test error per p (mean ± s.d. over seeds) beside 1 − p."""
    fig, ax = new_figure()
    width = 0.8 / len(WILSON_LRS)
    for j, name in enumerate(WILSON_LRS):
        errors = np.asarray(wilson[name]["test_error"], dtype=float)
        ax.bar(np.arange(len(config.wilson_p)) + j * width, errors.mean(1), width,
               yerr=errors.std(1), label=f"{name} (lr {WILSON_LRS[name]:g})")
    for i, p in enumerate(config.wilson_p):
        ax.hlines(1 - p, i - width / 2, i + 0.8 - width / 2, color="black", ls=":")
    ax.set_xticks(np.arange(len(config.wilson_p)) + 0.4 - width / 2,
                  [f"p = {p}" for p in config.wilson_p])
    ax.set(ylabel="test error", title="Wilson et al. 2017: adaptive methods → 1 − p (dotted)")
    ax.legend(fontsize=7)
    return fig


def figures(config: OptimizersConfig, result: dict) -> dict:
    runs_by_problem: dict[str, list[dict]] = {}
    for run in result["sweeps"]:
        runs_by_problem.setdefault(run["problem"], []).append(run)
    summary_of = summaries(config, result)
    figs = {"summary_table": summary_table(config, summary_of),
            "lr_sensitivity": lr_sensitivity(config, runs_by_problem),
            "learning_curves": learning_curves(config, runs_by_problem)}
    if (kappa_figure := condition_number(config, summary_of)) is not None:
        figs["condition_number"] = kappa_figure
    figs["wilson"] = wilson_errors(config, result["wilson"])
    return figs


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "summary_table": ("Per problem and optimiser: the best final error at its learning rate, the "
                      "steps to the problem's threshold and how many grid learning rates reach it; "
                      "bold: the fastest on each problem (DeepOBS)."),
    "lr_sensitivity": ("Final error against learning rate, per problem and optimiser (median over "
                       "seeds; dotted: the threshold): the wider the range under the threshold, "
                       "the less sensitive the optimiser to its learning rate."),
    "learning_curves": ("Learning curves at each optimiser's best learning rate, per problem "
                        "(median over seeds; dotted: the threshold)."),
    "condition_number": ("Steps to f/f0 ≤ 1e-3 on the quadratic against its condition number κ at "
                         "each optimiser's best learning rate: how each optimiser's step count "
                         "grows with κ (heavy-ball momentum: ~√κ, GD: ~κ)."),
    "wilson": ("Test error per p on Wilson et al.'s over-parameterised linear problem (mean ± s.d. "
               "over seeds) beside 1 − p (dotted), the error adaptive methods are predicted to "
               "reach (Wilson et al. 2017)."),
}


def work(config: OptimizersConfig, seeds: int) -> float:
    """Cost model units: µs (fitted at default): sweep steps, then Wilson et al.'s steps."""
    samples, every, d = 3 * config.batch_size, config.eval_every, config.parity_d
    cost = {"quadratic": (50, 3 * config.quadratic_dim**2),  # (µs a group, multiply-adds a model)
            "logistic": (270, (samples + 360 / every) * 650),
            "mlp": (520, (samples + 360 / every) * 26_122),
            "parity": (270, (samples + 4_096 / every) * 10 * d * (d + 2)),
            "convolution": (490, samples * 700 + 1e7 / every)}
    sweeps = sum((len(config.condition_numbers) if p == "quadratic" else 1) * len(config.lrs)
                 * (cost[p][0] + seeds * cost[p][1] / 3e4) for p in config.problems)
    wilson = 700 + len(config.wilson_p) * seeds * 9 * config.wilson_points**2 / 3e4
    return (config.steps * len(config.optimizers) * sweeps
            + len(WILSON_LRS) * config.wilson_steps * wilson)


EXPERIMENT = Experiment(
    name="optimizers",
    section="DeepOBS; Wilson et al. 2017",
    title="Optimiser choice: best error, speed and learning-rate sensitivity",
    version=5,
    config_class=OptimizersConfig,
    scales={
        "quick": {"optimizers": ["sgd", "momentum", "adam"], "lrs": [1e-3, 1e-2, 1e-1, 1.0],
                  "problems": ["quadratic", "logistic"], "condition_numbers": [10, 1_000],
                  "steps": 300, "eval_every": 25, "wilson_steps": 3_000, "wilson_p": [0.6]},
        "default": {"steps": 1_500, "wilson_steps": 10_000},
        "paper": {"steps": 10_000},
    },
    seeds={"quick": 2, "default": 3, "paper": 10},
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
