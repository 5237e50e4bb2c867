"""Does asynchrony help escape local optima? Stale gradients against matched isotropic noise.

The notes guess that the stale updates of asynchronous SGD helped the cat network (Le et al.
2012) out of poor local optima. Tested here on a problem whose global optimum is known and
where plain SGD from random starts often stops in a spurious local minimum: a student
f(x) = Σ_j relu(w_j·x) of the teacher's own size k learning the teacher Σ_i relu(x_i) on
Gaussian inputs (Safran & Shamir 2018: spurious minima are common for k ≥ 6; the global loss is
0). Over many seeds, the fraction of runs reaching the global loss is measured for synchronous
SGD, for SGD whose every gradient is τ steps stale (the simulator's fixed-delay mode), and for
synchronous SGD plus isotropic noise matched step by step: run in lockstep with the stale run,
each step it adds a random direction whose norm is that step's staleness perturbation
‖g(w_{t−τ}) − g(w_t)‖ in the stale run, seed by seed, on the same minibatch (the perturbation
shrinks as the stale run settles, and so does the noise). Every arm starts from the same
initialisation and draws the same minibatches.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from gradfail.distributed.server import ServerLogic
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.maths.statistics import CONFIDENCE, fraction_difference_interval, wilson_interval
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


def matched_noise(stale: torch.Tensor, fresh: torch.Tensor, generator: torch.Generator
                  ) -> torch.Tensor:
    """Isotropic noise with, seed by seed (rows), the norm of the staleness perturbation
    stale − fresh: a uniformly random direction times that norm (NaN once the stale run has
    diverged, which then ends the noisy run too)."""
    direction = torch.randn(stale.shape, generator=generator, device=stale.device)
    size = (stale - fresh).norm(dim=1, keepdim=True)
    return direction / direction.norm(dim=1, keepdim=True) * size


def final_losses(problem: Problem, server: ServerLogic) -> np.ndarray:
    """Per seed: the final loss over Var(y), inf once diverged."""
    final = problem.losses(server.params) / problem.scale
    return torch.where(torch.isfinite(final), final, math.inf).cpu().numpy()


def train(config: EscapeConfig, tau: int, ctx: RunContext) -> list[dict]:
    """SGD with every gradient τ steps stale (the server's version history supplies w_{t−τ});
    for τ > 0, in lockstep, synchronous SGD plus `matched_noise` of the stale run's
    perturbation at that step. Rows: the stale run (its mean per-step perturbation norm
    lr·‖g(w_{t−τ}) − g(w_t)‖ per seed) and, for τ > 0, the matched-noise run."""
    problem = Problem(config, ctx)
    stale = ServerLogic(problem.initial, "async", config.lr, history=tau + 2)
    noisy = ServerLogic(problem.initial, "async", config.lr, history=1)
    batches = ctx.generator("batches")  # the same minibatch sequence in every arm
    noise_draws = ctx.generator("noise")
    perturbation = torch.zeros(ctx.n_seeds, device=ctx.device)
    for t in range(config.steps):
        rows = torch.randint(config.examples, (ctx.n_seeds, config.batch_size),
                             generator=batches, device=ctx.device)
        read = max(0, t - tau)
        if tau == 0:
            (gradient,) = problem.gradients([stale.params], rows)
            stale.apply([(gradient, read)])
            continue
        old, fresh, own = problem.gradients([stale.at(read), stale.params, noisy.params], rows)
        perturbation += config.lr * (old - fresh).norm(dim=1)
        stale.apply([(old, read)])
        noisy.apply([(own + matched_noise(old, fresh, noise_draws), noisy.version)])
        if not (torch.isfinite(stale.params).any() or torch.isfinite(noisy.params).any()):
            break  # both diverged in every seed (NaN noise follows a diverged stale run)
    found = [{"tau": tau, "noise": False, "loss": final_losses(problem, stale),
              "perturbation": (perturbation / config.steps).cpu().numpy()}]
    if tau:
        found.append({"tau": 0, "noise": True, "matches_tau": tau,
                      "loss": final_losses(problem, noisy)})
    return found


def run(config: EscapeConfig, ctx: RunContext) -> dict:
    rows = []
    with ctx.track("stale and matched noise", len(config.taus)) as advance:
        for tau in config.taus:
            rows += ctx.part(f"τ={tau}", lambda tau=tau: {"rows": train(config, tau, ctx)})["rows"]
            advance(1)
    return {"stale": [r for r in rows if not r["noise"]],
            "matched": [r for r in rows if r["noise"]]}


# --------------------------------------------------------------------------------------------
# Claims: fractions of seeds reaching the global loss, compared by Newcombe's interval for a
# difference of two fractions; a claim "at some τ" takes the best τ only at confidence 1 − 0.05/k
# for its k delays (Bonferroni), so picking the best delay is paid for.


def reached(row: dict, config: EscapeConfig) -> np.ndarray:
    return np.asarray(row["loss"], dtype=float) < config.success


def diverged(row: dict) -> np.ndarray:
    return ~np.isfinite(np.asarray(row["loss"], dtype=float))




def norm(stale: dict) -> str:
    """The median over seeds of the mean per-step perturbation norm, where finite."""
    norms = np.asarray(stale["perturbation"], dtype=float)
    finite = norms[np.isfinite(norms)]
    return f"{np.median(finite):.2g}" if len(finite) else "not finite (diverged)"


def by_tau(config: EscapeConfig, result: dict) -> str:
    return "reached the global loss by τ: " + ", ".join(
        f"{r['tau']}: {reached(r, config).mean():.2f}" for r in result["stale"]) + \
        f" of {len(result['stale'][0]['loss'])} seeds"


def check_delay_limits_the_step(config: EscapeConfig, result: dict) -> Check:
    synchronous, largest = result["stale"][0], result["stale"][-1]
    return Check.at_least(fraction_difference_interval(diverged(largest), diverged(synchronous)),
                          0.9, "fraction of seeds diverged by τ: " + ", ".join(
                              f"{r['tau']}: {diverged(r).mean():.2f}" for r in result["stale"])
                          + f" (lr {config.lr:g}); at τ = {largest['tau']} minus at τ = 0")


def check_staleness_helps(config: EscapeConfig, result: dict) -> Check:
    synchronous, stale = result["stale"][0], result["stale"][1:]
    confidence = 1 - (1 - CONFIDENCE) / len(stale)
    return Check.some([Check.at_least(fraction_difference_interval(
        reached(row, config), reached(synchronous, config), confidence), 0.0,
        f"τ = {row['tau']} − synchronous") for row in stale], by_tau(config, result))


def check_matched_noise(config: EscapeConfig, result: dict) -> Check:
    synchronous = reached(result["stale"][0], config)
    pairs = [(s, m) for s in result["stale"] for m in result["matched"]
             if m["matches_tau"] == s["tau"]]
    confidence = 1 - (1 - CONFIDENCE) / len(pairs)
    parts = []
    for stale, matched in pairs:
        hits = reached(stale, config)
        parts.append(Check.every([
            Check.at_least(fraction_difference_interval(hits, reached(matched, config),
                                                        confidence), 0.0, "minus matched noise"),
            Check.at_least(fraction_difference_interval(hits, synchronous, confidence), 0.0,
                           "minus synchronous")],
            f"τ = {stale['tau']}: stale {hits.mean():.2f}, matched noise "
            f"{reached(matched, config).mean():.2f} (median per-step norm {norm(stale)}, "
            f"diverged {diverged(matched).mean():.2f})"))
    return Check.some(parts, by_tau(config, result))


CLAIMS = (
    Claim("delay shrinks the stable step", "delayed SGD needs a step ~1/(L·τ): a step stable "
          "without delay diverges once τ is large (Agarwal & Duchi 2011; the reason for α₀/τ, "
          "Zhang et al. 2016)", "at the largest τ, nearly every seed diverges (≥ 90 points more "
          "than at τ = 0)", check_delay_limits_the_step,
          test="the fraction of seeds whose final loss is not finite at the largest τ minus at "
               "τ = 0 (the same initialisations and minibatches); Newcombe's 95% interval for "
               "the difference; holds when at or above 0.9", id="delay-shrinks-the-stable-step"),
    Claim("staleness helps escape local optima", "the notes' guess: stale asynchronous updates "
          "helped the cat network (Le et al. 2012) out of poor local optima", "at some τ > 0, "
          "stale SGD reaches the global loss more often than synchronous SGD",
          check_staleness_helps,
          test="per τ > 0, the fraction of seeds reaching the global loss (loss / Var(y) below "
               "`success`) with stale gradients minus synchronously (the same initialisations "
               "and minibatches; the interval ignores the pairing, so it is conservative); "
               "Newcombe's interval at confidence 1 − 0.05/k for the k delays; holds when one "
               "lies at or above 0, fails when all lie below",
          id="staleness-helps-escape-local-optima"),
    Claim("staleness helps beyond matched noise", "the notes' guess, sharpened: the help is "
          "specific to staleness, not to any perturbation of its size", "at some τ, stale SGD "
          "reaches the global loss more often than both synchronous SGD and SGD with isotropic "
          "noise of the staleness perturbation's norm, step by step", check_matched_noise,
          test="per τ > 0, two differences of fractions reaching the global loss: stale minus "
               "matched noise (run in lockstep: each step's noise has the norm of that step's "
               "g(w_{t−τ}) − g(w_t) in the stale run) and stale minus synchronous; Newcombe's "
               "intervals at confidence 1 − 0.05/k for the k delays; a τ holds when both lie at "
               "or above 0; the claim holds at some τ, fails when every τ fails",
          id="staleness-helps-beyond-matched-noise"),
)


def figures(config: EscapeConfig, result: dict) -> dict:
    fig, ax = new_figure()
    for rows, label, colour, offset in ((result["stale"], "stale gradients", "tab:red", -0.15),
                                        (result["matched"], "isotropic noise, matched per step",
                                         "tab:blue", 0.15)):
        taus = [r.get("matches_tau", r["tau"]) for r in rows]
        fractions(ax, np.array(taus) + offset, [wilson_interval(reached(r, config))
                                                for r in rows], label, colour, fmt="o")
    ax.set(xlabel="staleness τ (noise: matched to τ)", ylabel="P(reach the global loss)",
           ylim=(-0.03, 1.03), xticks=config.taus,
           title=f"Escaping spurious minima, k = {config.units} (95% Wilson)")
    ax.legend(fontsize=8)
    return {"async_escape": fig}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "async_escape": ("Probability of reaching the global loss (95% Wilson) against staleness τ, "
                     "for stale gradients and for isotropic noise matched per step: whether "
                     "staleness helps escape spurious minima beyond its noise (Safran & Shamir "
                     "2018)."),
}


def work(config: EscapeConfig, seeds: int) -> float:
    """Cost model units: µs (fitted at default): gradients of all seeds."""
    gradients = sum(1 if tau == 0 else 3 if tau < 8 else 0.75  # τ ≥ 8: every seed diverges early
                    for tau in config.taus)
    return config.steps * gradients * (400 + seeds * config.batch_size * config.units**2 / 1e3)


EXPERIMENT = Experiment(
    name="async_escape",
    section="the notes' open question; Safran & Shamir 2018",
    title="Does asynchrony help escape local optima? Stale gradients vs matched noise",
    version=5,
    config_class=EscapeConfig,
    scales={
        "quick": {"steps": 2_000, "taus": [0, 2, 8]},
        "default": {},
        "paper": {"steps": 20_000, "taus": [0, 1, 2, 4, 8, 16, 32]},
    },
    seeds={"quick": 32, "default": 128, "paper": 512},
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
