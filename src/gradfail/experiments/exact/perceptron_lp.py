"""One threshold unit is a linear program: separability answered exactly, beside the perceptron
and logistic-regression gradient descent.

Training a single linear threshold unit to zero error is polynomial: it is the feasibility of
t_n (w·x_n + b) > 0, a linear program (the contrast Lin & Vitter 1991 draw with the NP-complete
two-node case; Blum & Rivest 1992 for three nodes). The LP answers "not separable" exactly,
which the perceptron (Rosenblatt 1958) and gradient descent on the logistic loss cannot: they
simply never stop. On separable data the perceptron stops after at most (R/γ)² updates
(Novikoff 1962), so its work grows as the margin γ shrinks, while the LP's does not have to.
Measured here on planted separators in d dimensions: points uniform in the unit ball at least
γ from the hyperplane; the non-separable twins add negatives at midpoints of pairs of positives
(their convex hulls then meet, so no separator exists, by construction).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt, field_validator

from gradfail.exact.threshold import separate
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.maths.statistics import CONFIDENCE, mean_interval
from gradfail.plotting import log_ticks, new_figure


class PerceptronConfig(Config):
    """Sizes are ours (the notes give no numbers; gradfail measured the LP at n = 10⁴)."""

    dim: PositiveInt = Field(10, description="input dimension d")
    sizes: list[PositiveInt] = Field([100, 1_000, 10_000], min_length=1, description="points n")
    margins: list[float] = Field([0.1, 0.03, 0.01, 0.003], min_length=2,
                                 description="planted margins γ (0 < γ < 1)")
    noisy_fraction: float = Field(0.01, gt=0, lt=1, description="midpoint negatives added to "
                                  "make the non-separable twin, as a fraction of n")
    max_updates: PositiveInt = Field(100_000, description="perceptron updates before giving up")
    gd_steps: PositiveInt = Field(20_000, description="logistic GD steps before giving up")
    gd_lr: PositiveFloat = Field(1.0, description="logistic GD step (loss smoothness ≤ R²/4)")
    time_limit: PositiveFloat = Field(60.0, description="seconds for each LP")

    @field_validator("margins")
    @classmethod
    def _margins(cls, margins: list[float]) -> list[float]:
        if not all(0 < m < 1 for m in margins):
            raise ValueError("margins must lie strictly between 0 and 1 (points are in the "
                             "unit ball)")
        return margins


# --------------------------------------------------------------------------------------------
# Planted instances.


def planted(n: int, dim: int, margin: float, generator: torch.Generator
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, labels ±1, w*): n points uniform in the unit ball with |w*·x| ≥ margin, labelled by
    the side of the hyperplane w*·x = 0 (‖w*‖ = 1), drawn by rejection."""
    draw = {"generator": generator, "device": generator.device, "dtype": torch.float64}
    normal = torch.randn(dim, **draw)
    normal /= normal.norm()
    kept = []
    while sum(len(k) for k in kept) < n:
        direction = torch.randn(2 * n, dim, **draw)
        radius = torch.rand(2 * n, 1, **draw) ** (1 / dim)
        points = direction / direction.norm(dim=1, keepdim=True) * radius
        kept.append(points[(points @ normal).abs() >= margin])
    x = torch.cat(kept)[:n]
    return x.cpu().numpy(), torch.sign(x @ normal).cpu().numpy(), normal.cpu().numpy()


def inseparable_twin(x: np.ndarray, labels: np.ndarray, fraction: float,
                     generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The data plus max(1, fraction·n) negatives at midpoints of random pairs of positives: a
    point of both convex hulls, so no hyperplane separates the classes."""
    positive = x[labels > 0]
    count = max(1, round(fraction * len(x)))
    pairs = torch.randint(len(positive), (count, 2), generator=generator,
                          device=generator.device).cpu().numpy()
    midpoints = positive[pairs].mean(1)
    return np.vstack([x, midpoints]), np.concatenate([labels, -np.ones(count)])


# --------------------------------------------------------------------------------------------
# The gradient methods: they stop only when every point is classified correctly.


def perceptron(x: np.ndarray, labels: np.ndarray, max_updates: int, chunk: int = 256) -> dict:
    """The online perceptron, cycling through the points: w += t_n·(x_n, 1) on every mistake
    (t_n w·x̃_n ≤ 0). Scans `chunk` points at a time for the next mistake, which is the same
    sequence of updates as one point at a time. Returns updates, whether it stopped (an epoch
    without mistakes) and the seconds."""
    signed = labels[:, None] * np.hstack([x, np.ones((len(x), 1))])
    n = len(signed)
    weights = np.zeros(signed.shape[1])
    updates, position, clean, start = 0, 0, 0, time.perf_counter()
    while clean < n and updates < max_updates:
        block = signed[position:position + chunk]
        mistakes = np.flatnonzero(block @ weights <= 0)
        if len(mistakes) == 0:
            clean += len(block)
            position = (position + len(block)) % n
            continue
        weights += block[mistakes[0]]
        updates += 1
        clean = 0
        position = (position + mistakes[0] + 1) % n
    return {"updates": updates, "stopped": clean >= n, "seconds": time.perf_counter() - start}


def logistic_gd(x: np.ndarray, labels: np.ndarray, steps: int, lr: float) -> dict:
    """Full-batch gradient descent on the mean logistic loss from w = 0, (x_n, 1) inputs, batched
    over a leading seed axis: x (seeds, n, d). Returns, per seed, the first step at which every
    point is classified correctly (or −1), and the seconds."""
    signed = torch.as_tensor(labels[..., None] * np.concatenate(
        [x, np.ones((*x.shape[:-1], 1))], -1))
    weights = torch.zeros(signed.shape[0], signed.shape[2], dtype=signed.dtype)
    first = torch.full((signed.shape[0],), -1)
    start = time.perf_counter()
    for step in range(steps + 1):
        margins = torch.einsum("snd,sd->sn", signed, weights)
        first = torch.where((first < 0) & (margins > 0).all(1), step, first)
        if (first >= 0).all() or step == steps:
            break
        slope = torch.sigmoid(-margins)  # −∂loss/∂margin
        weights += lr * torch.einsum("sn,snd->sd", slope, signed) / signed.shape[1]
    return {"separated_at": first.numpy(), "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------------------------
# The sweep: every (n, γ) cell, separable instances and their non-separable twins.


def solve_cell(config: PerceptronConfig, n: int, margin: float | None, ctx: RunContext) -> dict:
    """n_seeds instances at margin γ (separable), or their twins when margin is None."""
    data = []
    for seed in range(ctx.n_seeds):
        generator = ctx.generator("data", n, margin, seed)
        x, labels, _ = planted(n, config.dim, margin or max(config.margins), generator)
        if margin is None:
            x, labels = inseparable_twin(x, labels, config.noisy_fraction, generator)
        data.append((x, labels))
    lp = [separate(x, labels, config.time_limit) for x, labels in data]
    runs = [perceptron(x, labels, config.max_updates) for x, labels in data]
    gd = logistic_gd(np.stack([x for x, _ in data]), np.stack([t for _, t in data]),
                     config.gd_steps, config.gd_lr)
    radius = [float(np.sqrt((x**2).sum(1).max() + 1)) for x, _ in data]
    return {
        "n": n, "margin": margin,
        "lp_separable": [s.separable for s in lp], "lp_margin": [s.margin for s in lp],
        "lp_seconds": [s.seconds for s in lp],
        "perceptron_updates": [r["updates"] for r in runs],
        "perceptron_stopped": [r["stopped"] for r in runs],
        "perceptron_seconds": [r["seconds"] for r in runs],
        "novikoff_bound": [(r / (margin or math.nan)) ** 2 for r in radius],
        "gd_separated_at": gd["separated_at"], "gd_seconds": gd["seconds"] / ctx.n_seeds,
    }


def run(config: PerceptronConfig, ctx: RunContext) -> dict:
    cells = [(n, m) for n in config.sizes for m in [*config.margins, None]]
    with ctx.track("perceptron vs LP", len(cells)) as advance:
        found = []
        for n, margin in cells:
            label = f"γ={margin}" if margin else "not separable"
            found.append(ctx.part(f"n={n}, {label}", lambda n=n, m=margin: solve_cell(
                config, n, m, ctx)))
            advance(1)
    return {"separable": [c for c in found if c["margin"] is not None],
            "inseparable": [c for c in found if c["margin"] is None]}


# --------------------------------------------------------------------------------------------
# Claims.


def check_lp_exact(config: PerceptronConfig, result: dict) -> Check:
    said_yes = [s for c in result["separable"] for s in c["lp_separable"]]
    said_no = [not s for c in result["inseparable"] for s in c["lp_separable"]]
    right = sum(said_yes) + sum(said_no)
    total = len(said_yes) + len(said_no)
    gave_up = [not s for c in result["inseparable"] for s in c["perceptron_stopped"]]
    gd_gave_up = [a < 0 for c in result["inseparable"] for a in c["gd_separated_at"]]
    return Check.judge(right == total, right / total,
                       f"LP right on {right}/{total} instances ({sum(said_yes)}/{len(said_yes)} "
                       f"separable, {sum(said_no)}/{len(said_no)} not); on the non-separable "
                       f"ones the perceptron ran out of updates on {sum(gave_up)}/{len(gave_up)} "
                       f"and logistic GD out of steps on {sum(gd_gave_up)}/{len(gd_gave_up)}, "
                       "without an answer")


def check_novikoff(config: PerceptronConfig, result: dict) -> Check:
    ratios = [u / bound for c in result["separable"]
              for u, bound in zip(c["perceptron_updates"], c["novikoff_bound"], strict=True)]
    unfinished = sum(not s for c in result["separable"] for s in c["perceptron_stopped"])
    worst = max(ratios)
    return Check.judge(worst <= 1.0, worst,
                       f"updates / (R/γ)² at most {worst:.3g} over {len(ratios)} separable "
                       f"instances (median {np.median(ratios):.3g}); {unfinished} ran out of "
                       f"updates ({config.max_updates:,})")



def margin_slopes(result: dict, n: int) -> tuple[np.ndarray, ...]:
    """Per seed, log-log slopes against 1/γ at size n: perceptron updates, LP seconds."""
    cells = [c for c in result["separable"] if c["n"] == n]
    inverse = np.log([1 / c["margin"] for c in cells])
    updates = np.log(np.maximum([c["perceptron_updates"] for c in cells], 1))  # (margins, seeds)
    seconds = np.log([c["lp_seconds"] for c in cells])
    return np.polyfit(inverse, updates, 1)[0], np.polyfit(inverse, seconds, 1)[0]


def check_margin_scaling(config: PerceptronConfig, result: dict) -> Check:
    n = max(config.sizes)
    perceptron_slopes, lp_slopes = margin_slopes(result, n)
    perceptron, lp = (mean_interval(slopes, 1 - (1 - CONFIDENCE) / 2)
                      for slopes in (perceptron_slopes, lp_slopes))
    cut = sum(not s for c in result["separable"] if c["n"] == n for s in c["perceptron_stopped"])
    return Check.every([Check.at_least(perceptron, 0.5, "perceptron updates ≥ 0.5"),
                  Check.at_least(lp, -0.25, "LP seconds ≥ −0.25"),
                  Check.at_most(lp, 0.25, "LP seconds ≤ 0.25")],
                 f"at n = {n:,}, log-log slope against 1/γ per seed: perceptron updates "
                 + ", ".join(f"{x:.2f}" for x in perceptron_slopes) + ", LP seconds "
                 + ", ".join(f"{x:.2f}" for x in lp_slopes) + f" ({cut} perceptron runs cut at "
                 f"{config.max_updates:,} updates: floors; LP seconds are wall clock)")


CLAIMS = (
    Claim("the LP decides separability exactly", "a single threshold unit is a linear program: "
          "separable or not is answered exactly in polynomial time (Lin & Vitter 1991)",
          "every planted-separable instance called separable (separator verified in float64), "
          "every non-separable twin called not separable", check_lp_exact, kind="sanity",
          id="the-lp-decides-separability-exactly"),
    Claim("the perceptron's updates stay within Novikoff's bound",
          "the perceptron makes at most (R/γ)² updates on data separable "
          "with margin γ (Novikoff 1962)", "updates ≤ (R/γ)² on every separable instance, with "
          "R = max ‖(x, 1)‖ and the planted γ", check_novikoff, kind="sanity",
          id="novikoffs-bound"),
    Claim("the perceptron slows with the margin, the LP does not", "Novikoff 1962: the "
          "perceptron's work grows as 1/γ² at worst; an LP is polynomial in the input size",
          "at the largest n, log-log slope vs 1/γ ≥ 0.5 for perceptron updates and within "
          "±0.25 for LP time", check_margin_scaling,
          test="per seed, at the largest n, the least-squares slopes of log perceptron updates "
               "and of log LP seconds against log 1/γ over the planted margins (independent "
               "instances per margin); Student's t intervals of the mean slope over seeds at "
               "97.5% each; holds when the perceptron's is at or above 0.5 and the LP's lies "
               "within ±0.25", id="the-perceptron-slows-with-the-margin-the-lp-does-not"),
)


def figures(config: PerceptronConfig, result: dict) -> dict:
    fig, (ax_updates, ax_time) = new_figure(ncols=2)
    for n, colour in zip(config.sizes, ("tab:blue", "tab:orange", "tab:green", "tab:red",
                                        "tab:purple"), strict=False):
        cells = [c for c in result["separable"] if c["n"] == n]
        margins = [c["margin"] for c in cells]
        ax_updates.plot(margins, [np.median(c["perceptron_updates"]) for c in cells], "o-",
                        color=colour, label=f"perceptron, n = {n:,}")
        reached = [np.median([a for a in c["gd_separated_at"] if a >= 0] or [np.nan])
                   for c in cells]
        ax_updates.plot(margins, reached, "s--", color=colour, alpha=0.6,
                        label=f"logistic GD steps, n = {n:,}")
        ax_time.plot(margins, [np.median(c["lp_seconds"]) for c in cells], "o-", color=colour,
                     label=f"LP, n = {n:,}")
        ax_time.plot(margins, [np.median(c["perceptron_seconds"]) for c in cells], "s--",
                     color=colour, alpha=0.6, label=f"perceptron, n = {n:,}")
    margins = np.array(config.margins)
    ax_updates.plot(margins, 2 / margins**2, "k:", label="(R/γ)², R = √2")
    ax_updates.set(yscale="log", xlabel="planted margin γ (shrinking →)", ylabel="updates or steps to separate",
                   title="Gradient methods slow down as the margin shrinks")
    ax_time.set(yscale="log", xlabel="planted margin γ (shrinking →)", ylabel="seconds",
                title="The LP's time barely depends on the margin")
    for ax in (ax_updates, ax_time):
        log_ticks(ax, margins)
        ax.invert_xaxis()
        ax.legend(fontsize=7)
    return {"margin_scaling": fig}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "margin_scaling": ("Against the planted margin γ, shrinking to the right, per size n: "
                       "perceptron updates and logistic-GD steps to separate grow towards (R/γ)² "
                       "(dotted: Novikoff's bound), while the LP's seconds barely change."),
}


def work(config: PerceptronConfig, seeds: int) -> float:
    """Cost model units: µs (fitted at default): perceptron updates, LP rows, GD steps."""
    def capped(cap: int, scale: float, margin: float | None) -> float:  # ~ (R/γ)², R² ≈ 2
        return cap if margin is None else min(cap, scale / margin**2)
    return sum(seeds * (5 * capped(config.max_updates, 2, m) + 12 * n)
               + capped(config.gd_steps, 0.15, m) * (45 + seeds * n * config.dim / 400)
               for n in config.sizes for m in [*config.margins, None])


EXPERIMENT = Experiment(
    name="perceptron_lp",
    section="Lin & Vitter 1991; Novikoff 1962",
    title="One threshold unit: separability by LP vs the perceptron and logistic GD",
    version=2,
    config_class=PerceptronConfig,
    scales={
        "quick": {"sizes": [100, 1_000], "margins": [0.1, 0.03, 0.01], "max_updates": 20_000,
                  "gd_steps": 5_000},
        "default": {},
        "paper": {"margins": [0.1, 0.03, 0.01, 0.003, 0.001], "max_updates": 2_000_000,
                  "gd_steps": 100_000},
    },
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
