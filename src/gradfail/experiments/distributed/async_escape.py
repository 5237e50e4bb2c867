"""Does asynchrony help escape local optima? Stale gradients against matched isotropic noise.

The notes guess that the stale updates of asynchronous SGD helped the cat network (Le et al.
2012) out of poor local optima. Tested here on a problem whose global optimum is known and
where plain SGD from random starts often stops in a spurious local minimum: a student
f(x) = Σ_j relu(w_j·x) of the teacher's own size k learning the teacher Σ_i relu(x_i) on
Gaussian inputs (Safran & Shamir 2018: spurious minima are common for k ≥ 6; the global loss is
0). Over many seeds, the fraction of runs reaching the global loss is measured for synchronous
SGD, for SGD whose every gradient is τ steps stale (the simulator's fixed-delay mode), and for
synchronous SGD plus isotropic Gaussian noise whose per-step norm matches the perturbation the
staleness caused, lr·‖g(w_{t−τ}) − g(w_t)‖, measured seed by seed in the stale run.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from gradfail.distributed.server import ServerLogic
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.maths.statistics import wilson_interval
from gradfail.plotting import fractions, new_figure


class EscapeConfig(Config):
    """Sizes are ours; the problem is Safran & Shamir's (2018) with a finite sample."""

    units: int = Field(10, ge=2, description="k: teacher and student hidden units, = input dim")
    examples: PositiveInt = Field(2_048, description="training inputs, N(0, I_k)")
    batch_size: PositiveInt = Field(64)
    lr: PositiveFloat = Field(0.05)
    steps: PositiveInt = Field(4_000)
    taus: list[NonNegativeInt] = Field([0, 2, 4, 8, 16], min_length=2)
    success: PositiveFloat = Field(1e-3, description="global: loss / Var(teacher) below this")


# --------------------------------------------------------------------------------------------
# The problem: seeds as rows of one flat (seeds, k·k) weight matrix.


class Problem:
    def __init__(self, config: EscapeConfig, ctx: RunContext):
        k, generator = config.units, ctx.generator("data")
        self.x = torch.randn(config.examples, k, generator=generator, device=ctx.device)
        self.y = torch.relu(self.x).sum(1)
        self.scale = float(self.y.var())
        init = torch.randn(ctx.n_seeds, k * k, generator=ctx.generator("init"),
                           device=ctx.device) / math.sqrt(k)
        self.initial, self.config, self.k = init, config, k

    def losses(self, params: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Per seed: mean squared error over `rows` (seeds, batch) or all examples."""
        weights = params.reshape(len(params), self.k, self.k)
        x = self.x if rows is None else self.x[rows]
        y = self.y if rows is None else self.y[rows]
        out = torch.relu(x @ weights.transpose(1, 2) if rows is not None else
                         torch.einsum("nd,sjd->snj", x, weights)).sum(-1)
        return (out - y).square().mean(-1)

    def gradients(self, points: list[torch.Tensor], rows: torch.Tensor) -> list[torch.Tensor]:
        """∇ of each seed's minibatch loss at each parameter set in `points`, same minibatch."""
        gradients = []
        for params in points:
            flat = params.detach().requires_grad_(True)
            gradients.append(torch.autograd.grad(self.losses(flat, rows).sum(), flat)[0])
        return gradients


def train(config: EscapeConfig, tau: int, noise: torch.Tensor | None, ctx: RunContext) -> dict:
    """SGD with every gradient τ steps stale (the server's version history supplies w_{t−τ}),
    or, when `noise` (per-seed norms) is given, fresh gradients plus isotropic noise of that
    norm each step. Returns final losses / Var(y) and, for τ > 0, the mean per-step norm of
    the staleness perturbation lr·(g(w_{t−τ}) − g(w_t))."""
    problem = Problem(config, ctx)
    server = ServerLogic(problem.initial, "async", config.lr, history=tau + 2)
    batches = ctx.generator("batches")  # the same minibatch sequence in every arm
    noise_draws = ctx.generator("noise")
    perturbation = torch.zeros(ctx.n_seeds, device=ctx.device)
    for t in range(config.steps):
        rows = torch.randint(config.examples, (ctx.n_seeds, config.batch_size),
                             generator=batches, device=ctx.device)
        read = max(0, t - tau)
        if tau and noise is None:
            stale, fresh = problem.gradients([server.at(read), server.params], rows)
            perturbation += config.lr * (stale - fresh).norm(dim=1)
            gradient = stale
        else:
            (gradient,) = problem.gradients([server.params], rows)
            if noise is not None:
                direction = torch.randn(gradient.shape, generator=noise_draws, device=ctx.device)
                direction /= direction.norm(dim=1, keepdim=True)
                gradient = gradient + (noise / config.lr)[:, None] * direction
        server.apply([(gradient, read)])
    final = problem.losses(server.params) / problem.scale
    return {"tau": tau, "noise": noise is not None,
            "loss": torch.where(torch.isfinite(final), final, math.inf).cpu().numpy(),
            "perturbation": (perturbation / config.steps).cpu().numpy()}


def run(config: EscapeConfig, ctx: RunContext) -> dict:
    stale, matched = [], []
    with ctx.track("stale vs matched noise", 2 * len(config.taus)) as advance:
        for tau in config.taus:
            stale.append(ctx.part(f"stale: τ={tau}", lambda tau=tau: train(config, tau, None,
                                                                         ctx)))
            advance(1)
        for row in stale:
            perturbation = np.asarray(row["perturbation"], dtype=float)
            finite = np.isfinite(perturbation)
            if row["tau"] == 0 or finite.mean() < 0.5:
                advance(1)
                continue  # most stale runs diverged: no perturbation to match
            # a seed whose stale run diverged gets the median of the finite norms
            norm = torch.as_tensor(np.where(finite, perturbation, np.median(
                perturbation[finite])), device=ctx.device, dtype=torch.float32)
            matched.append(ctx.part(f"matched noise: τ={row['tau']}", lambda n=norm, r=row: {
                **train(config, 0, n, ctx), "matches_tau": r["tau"]}))
            advance(1)
    return {"stale": stale, "matched": matched}


# --------------------------------------------------------------------------------------------
# Claims: fractions reaching the global loss, Wilson 95% intervals over seeds.


def reached(row: dict, config: EscapeConfig) -> tuple[float, float, float, int]:
    return wilson_interval(np.asarray(row["loss"], dtype=float) < config.success)


def check_staleness_helps(config: EscapeConfig, result: dict) -> Check:
    base = reached(result["stale"][0], config)
    best = max(result["stale"][1:], key=lambda r: reached(r, config)[0])
    success = reached(best, config)
    return Check.judge(success[1] > base[2], success[0] - base[0],
                       f"synchronous {base[0]:.2f} [{base[1]:.2f}, {base[2]:.2f}]; best stale "
                       f"τ = {best['tau']}: {success[0]:.2f} [{success[1]:.2f}, {success[2]:.2f}] "
                       f"of {success[3]} seeds; by τ: " + ", ".join(
                           f"{r['tau']}: {reached(r, config)[0]:.2f}" for r in result["stale"]))


def check_matched_noise(config: EscapeConfig, result: dict) -> Check:
    pairs = [(s, m) for s in result["stale"] for m in result["matched"]
             if m["matches_tau"] == s["tau"]]
    synchronous = reached(result["stale"][0], config)
    better = [s for s, m in pairs if reached(s, config)[1] > max(reached(m, config)[2],
                                                                   synchronous[2])]
    diverged = [s["tau"] for s in result["stale"]
                if np.isfinite(np.asarray(s["perturbation"], dtype=float)).mean() < 0.5]
    detail = (f"most stale runs diverged at τ = {diverged}, no noise to match; " if diverged
              else "") + "; ".join(f"τ = {s['tau']}: stale {reached(s, config)[0]:.2f}, matched noise "
                       f"{reached(m, config)[0]:.2f} (noise norm "
                       f"{np.nanmedian(np.asarray(s['perturbation'], dtype=float)):.2g})"
                       for s, m in pairs) + f"; synchronous {synchronous[0]:.2f}"
    return Check.judge(bool(better), float(len(better)), detail)


def check_delay_limits_the_step(config: EscapeConfig, result: dict) -> Check:
    finite = {r["tau"]: float(np.isfinite(np.asarray(r["loss"], dtype=float)).mean())
              for r in result["stale"]}
    largest = max(finite)
    return Check.judge(finite[0] == 1.0 and finite[largest] == 0.0, finite[largest],
                       "fraction of seeds with a finite final loss by τ: " + ", ".join(
                           f"{t}: {f:.2f}" for t, f in finite.items()) + f" (lr {config.lr:g})")


CLAIMS = (
    Claim("delay shrinks the stable step", "delayed SGD needs a step ~1/(L·τ): a step stable "
          "without delay diverges once τ is large (Agarwal & Duchi 2011; the reason for α₀/τ, "
          "Zhang et al. 2016)", "every seed finite at τ = 0, none at the largest τ",
          check_delay_limits_the_step),
    Claim("staleness helps escape local optima", "the notes' guess: stale asynchronous updates "
          "helped the cat network (Le et al. 2012) out of poor local optima", "the best τ > 0 "
          "reaches the global loss more often than synchronous SGD, Wilson 95% intervals apart",
          check_staleness_helps),
    Claim("staleness helps beyond matched noise", "the notes' guess, sharpened: the help is "
          "specific to staleness, not to any perturbation of its size", "at some τ, stale SGD "
          "above both synchronous SGD and SGD with isotropic noise of the same per-step norm, "
          "Wilson 95% intervals apart", check_matched_noise),
)


def figures(config: EscapeConfig, result: dict) -> dict:
    fig, ax = new_figure()
    for rows, label, colour, offset in ((result["stale"], "stale gradients", "tab:red", -0.15),
                                        (result["matched"], "matched isotropic noise",
                                         "tab:blue", 0.15)):
        taus = [r.get("matches_tau", r["tau"]) for r in rows]
        fractions(ax, np.array(taus) + offset, [reached(r, config) for r in rows], label,
                  colour, fmt="o")
    ax.set(xlabel="staleness τ (noise: matched to τ)", ylabel="P(reach the global loss)",
           ylim=(-0.03, 1.03), xticks=config.taus,
           title=f"Escaping spurious minima, k = {config.units} (95% Wilson)")
    ax.legend(fontsize=8)
    return {"async_escape": fig}


EXPERIMENT = Experiment(
    name="async_escape",
    section="the notes' open question; Safran & Shamir 2018",
    title="Does asynchrony help escape local optima? Stale gradients vs matched noise",
    version=4,
    config_class=EscapeConfig,
    scales={
        "quick": {"steps": 2_000, "taus": [0, 2, 8]},
        "default": {},
        "paper": {"steps": 20_000, "taus": [0, 1, 2, 4, 8, 16, 32]},
    },
    seeds={"quick": 32, "default": 128, "paper": 512},
    run=run,
    figures=figures,
    claims=CLAIMS,
)
