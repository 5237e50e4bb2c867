"""Cost-function design: an autoencoder on digits with and without penalties on its cost.

The notes ask what terms added to the cost do, and whether sparsity and over-fitting are
linked. An autoencoder 64 → 100 (sigmoid) → 64 (linear) reconstructs scikit-learn's digits
(raw intensities in [0, 1]) by mean squared error, alone or with one penalty: L2 weight decay,
L1 on the weights, L1 on the hidden activations, or the sparse autoencoder's KL penalty
β·Σⱼ KL(ρ ‖ ρ̂ⱼ) (Ng's notes, ρ = 0.05), at several strengths and training-set sizes. Every
setting × seed is one model of a batch trained together by Adam; a seed's models share their
training images, initialisation and minibatch stream, so settings compare paired. The held-out
split is cut in two halves: penalty strengths are chosen on the first (validation), claims are
judged on the second (test). Measured: held-out reconstruction error, the generalisation gap
(held-out − training error), hidden sparsity (the fraction of held-out activations below 0.1),
and the accuracy of a ridge-regression linear classifier fitted on the codes of the whole
training split.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.stats
import torch
from pydantic import Field, PositiveFloat, PositiveInt, field_validator

from gradfail.data.digits import check_training_sizes, digit_images, split
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext, check_finite
from gradfail.maths.statistics import Interval, bootstrap_interval, mean_interval
from gradfail.plotting import new_figure

PENALTIES = ("L2 weights", "L1 weights", "L1 activations", "KL sparsity")
COLOURS = dict(zip(("none", *PENALTIES), ("black", "tab:blue", "tab:cyan", "tab:orange",
                                          "tab:red"), strict=True))
SPARSE_BELOW = 0.1  # a hidden activation below this counts as silent
RIDGE = 1.0  # the linear classifier's ridge penalty


class CostConfig(Config):
    """Sizes and strengths are ours; ρ = 0.05 is the sparse autoencoder's usual target."""

    hidden: PositiveInt = Field(100)
    samples: list[PositiveInt] = Field([50, 200, 1_437], min_length=2,
                                       description="training images per model")
    l2_weights: list[PositiveFloat] = Field([1e-6, 1e-5, 1e-4, 1e-3], min_length=1)
    l1_weights: list[PositiveFloat] = Field([1e-7, 1e-6, 1e-5, 1e-4], min_length=1)
    l1_activations: list[PositiveFloat] = Field([1e-5, 1e-4, 1e-3, 1e-2], min_length=1)
    kl_sparsity: list[PositiveFloat] = Field([1e-4, 1e-3, 1e-2, 1e-1], min_length=1)
    sparsity_target: float = Field(0.05, gt=0, lt=1, description="ρ of the KL penalty")
    steps: PositiveInt = Field(3_000)
    batch_size: PositiveInt = Field(64)
    lr: PositiveFloat = Field(3e-3, description="Adam")

    @field_validator("samples")
    @classmethod
    def _samples(cls, samples: list[int]) -> list[int]:
        return check_training_sizes(samples)

    def settings(self) -> list[tuple[str, float]]:
        """("none", 0) and every (penalty, strength)."""
        strengths = (self.l2_weights, self.l1_weights, self.l1_activations, self.kl_sparsity)
        return [("none", 0.0)] + [(p, s) for p, values in zip(PENALTIES, strengths, strict=True)
                                  for s in values]


# --------------------------------------------------------------------------------------------
# A batch of autoencoders, one per (setting, seed): x (models, batch, 64).


def initial(models: int, hidden: int, generator: torch.Generator) -> list[torch.Tensor]:
    draw = {"generator": generator, "device": generator.device}
    return [torch.randn(models, 64, hidden, **draw) / math.sqrt(64),
            torch.zeros(models, 1, hidden, device=generator.device),
            torch.randn(models, hidden, 64, **draw) / math.sqrt(hidden),
            torch.zeros(models, 1, 64, device=generator.device)]


def encode(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(torch.baddbmm(params[1], x, params[0]))


def reconstruction_error(params: list[torch.Tensor], x: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean squared error per model (models,), codes (models, batch, hidden))."""
    codes = encode(params, x)
    return (torch.baddbmm(params[3], codes, params[2]) - x).square().mean((1, 2)), codes


def penalty(params: list[torch.Tensor], codes: torch.Tensor, strengths: torch.Tensor,
            target: float) -> torch.Tensor:
    """Per model, Σ over the four penalties of strength × penalty; strengths (4, models)."""
    weights = (params[0], params[2])
    rho = codes.mean(1).clamp(1e-6, 1 - 1e-6)  # (models, hidden)
    kl = target * torch.log(target / rho) + (1 - target) * torch.log((1 - target) / (1 - rho))
    terms = torch.stack([sum(w.square().sum((1, 2)) for w in weights),
                         sum(w.abs().sum((1, 2)) for w in weights),
                         codes.sum(2).mean(1), kl.sum(1)])
    return (strengths * terms).sum(0)


def ridge_accuracy(train_codes: torch.Tensor, train_y: torch.Tensor, test_codes: torch.Tensor,
                   test_y: torch.Tensor) -> torch.Tensor:
    """Test accuracy per model of ridge regression onto one-hot labels (a linear classifier)."""
    def with_bias(codes: torch.Tensor) -> torch.Tensor:
        return torch.cat((codes, torch.ones_like(codes[..., :1])), -1)
    h, targets = with_bias(train_codes), torch.nn.functional.one_hot(train_y, 10).float()
    gram = h.transpose(1, 2) @ h + RIDGE * torch.eye(h.shape[-1], device=h.device)
    weights = torch.linalg.solve(gram, h.transpose(1, 2) @ targets)
    return ((with_bias(test_codes) @ weights).argmax(-1) == test_y).float().mean(1)


# --------------------------------------------------------------------------------------------
# Training every setting × seed at one training-set size.


def train(n: int, config: CostConfig, ctx: RunContext) -> dict:
    images, labels = digit_images(ctx.device)
    images = images.flatten(1)
    train_split, held_out = (part.to(ctx.device) for part in split(ctx.generator("split")))
    halves = {"validation": held_out[:len(held_out) // 2], "test": held_out[len(held_out) // 2:]}
    orders = torch.rand(ctx.n_seeds, len(train_split), generator=ctx.generator("subsets"),
                        device=ctx.device).argsort(1)  # nested subsets: the first n per seed
    settings = config.settings()
    models = len(settings) * ctx.n_seeds
    seed_of = torch.arange(models, device=ctx.device) % ctx.n_seeds
    train_x = images[train_split[orders[seed_of, :n]]]  # (models, n, 64)
    strengths = torch.zeros(len(PENALTIES), models, device=ctx.device)
    for index, (name, strength) in enumerate(settings):
        if name != "none":
            strengths[PENALTIES.index(name), index * ctx.n_seeds:(index + 1) * ctx.n_seeds] = (
                strength)
    params = [p[seed_of].clone().requires_grad_(True)
              for p in initial(ctx.n_seeds, config.hidden, ctx.generator("init", n))]
    adam = torch.optim.Adam(params, lr=config.lr)
    batches = ctx.generator("batches", n)
    for _ in range(config.steps):
        pick = torch.randint(n, (ctx.n_seeds, config.batch_size), generator=batches,
                             device=ctx.device)[seed_of]
        x = train_x.gather(1, pick[..., None].expand(-1, -1, 64))
        error, codes = reconstruction_error(params, x)
        loss = (error + penalty(params, codes, strengths, config.sparsity_target)).sum()
        check_finite(loss, f"the autoencoders at n={n}")
        adam.zero_grad(set_to_none=True)
        loss.backward()
        adam.step()

    def per_setting(values: torch.Tensor) -> list:
        return values.view(len(settings), ctx.n_seeds).cpu().numpy()
    found = {"n": n, "settings": settings}
    with torch.no_grad():
        found["train_error"] = per_setting(reconstruction_error(params, train_x)[0])
        train_codes = encode(params, images[train_split].expand(models, -1, -1))
        for name, half in halves.items():
            error, codes = reconstruction_error(params, images[half].expand(models, -1, -1))
            found[f"{name}_error"] = per_setting(error)
            found[f"{name}_sparsity"] = per_setting((codes < SPARSE_BELOW).float().mean((1, 2)))
            found[f"{name}_accuracy"] = per_setting(ridge_accuracy(
                train_codes, labels[train_split], codes, labels[half]))
    return found


def run(config: CostConfig, ctx: RunContext) -> dict:
    sizes = []
    with ctx.track("autoencoders by training-set size", len(config.samples)) as advance:
        for n in config.samples:
            sizes.append(ctx.part(f"n={n}", lambda n=n: train(n, config, ctx)))
            advance(1)
    return {"sizes": sizes}


# --------------------------------------------------------------------------------------------
# Claims.



NONE = ("none", 0.0)
SPARSE = ("L1 activations", "KL sparsity")
WEIGHTS = ("L2 weights", "L1 weights")


def per_seed(values, at_size: dict, setting: tuple[str, float]) -> np.ndarray:
    """One setting's row of (settings, seeds) values at one size."""
    return np.asarray(values, float)[[tuple(s) for s in at_size["settings"]].index(setting)]


def gaps(at_size: dict, half: str = "test") -> np.ndarray:
    """Held-out − training error, (settings, seeds)."""
    return np.asarray(at_size[f"{half}_error"]) - np.asarray(at_size["train_error"])


def table(values, at_size: dict) -> dict[tuple[str, float], float]:
    """{(penalty, strength): mean over seeds} of (settings, seeds) values."""
    return {tuple(s): float(np.mean(v)) for s, v in zip(at_size["settings"], values,
                                                         strict=True)}


def of(at_size: dict, penalties: tuple[str, ...]) -> list[tuple[str, float]]:
    return [tuple(s) for s in at_size["settings"] if s[0] in penalties]


def strongest(at_size: dict, penalty_name: str) -> tuple[str, float]:
    return max(of(at_size, (penalty_name,)), key=lambda s: s[1])


def check_sparse(config: CostConfig, result: dict) -> Check:
    at_size = result["sizes"][-1]
    none = per_seed(at_size["test_sparsity"], at_size, NONE)
    parts = {}
    for name in SPARSE:
        setting = strongest(at_size, name)
        silent = per_seed(at_size["test_sparsity"], at_size, setting)
        parts[f"{name} {setting[1]:g}"] = Check.at_least(
            mean_interval(silent - none), 0.0, f"{silent.mean():.0%} silent vs none "
            f"{none.mean():.0%}")
    found = Check.all_of(parts)
    return Check(found.verdict, found.measured, f"n={at_size['n']:,}, activations < "
                 f"{SPARSE_BELOW}, test half: {found.detail}", found.interval)


def check_weight_decay(config: CostConfig, result: dict) -> Check:
    at_size = result["sizes"][0]
    validation, test = table(gaps(at_size, "validation"), at_size), gaps(at_size)
    none = per_seed(test, at_size, NONE)
    parts = {}
    for name in WEIGHTS:
        setting = min(of(at_size, (name,)), key=validation.get)
        gap = per_seed(test, at_size, setting)
        parts[f"{name} {setting[1]:g}"] = Check.at_least(
            mean_interval(none - gap), 0.0, f"test gap {gap.mean():.4f} vs none "
            f"{none.mean():.4f}")
    found = Check.all_of(parts)
    return Check(found.verdict, found.measured, f"n={at_size['n']}, strengths chosen by the "
                 f"validation gap: {found.detail}", found.interval)


def rank_correlation(sparsity: np.ndarray, gap: np.ndarray) -> float:
    """Spearman's ρ; 0 where one side is constant (no ranking to correlate)."""
    if np.ptp(sparsity) == 0 or np.ptp(gap) == 0:
        return 0.0
    return float(scipy.stats.spearmanr(sparsity, gap)[0])


def sparsity_and_gap(at_size: dict) -> tuple[np.ndarray, np.ndarray]:
    """Test sparsity and test gap of every setting × seed, setting-major."""
    return np.ravel(at_size["test_sparsity"]), np.ravel(gaps(at_size))


def sparsity_gap_correlation(at_size: dict) -> Interval:
    """ρ(test sparsity, test gap) over settings × seeds, with its 95% bootstrap interval by
    setting: a setting's seeds are one cluster, never counted as independent settings."""
    sparsity, gap = sparsity_and_gap(at_size)
    settings = np.repeat(np.arange(len(at_size["settings"])), np.shape(at_size["test_error"])[1])

    def rho(index: np.ndarray) -> float:
        return rank_correlation(sparsity[index.astype(int)], gap[index.astype(int)])
    return bootstrap_interval(np.arange(len(sparsity)), rho, clusters=settings)


def check_link(config: CostConfig, result: dict) -> Check:
    small, *others = result["sizes"]
    found = sparsity_gap_correlation(small)
    return Check.at_most(found, 0.0, "".join(
        f"ρ {rank_correlation(*sparsity_and_gap(size)):+.2f} at n={size['n']:,}; "
        for size in others) + f"Spearman ρ(test sparsity, test gap) at n={small['n']:,}: "
        f"{found.estimate:+.2f}")


def check_classifier(config: CostConfig, result: dict) -> Check:
    at_size = result["sizes"][-1]
    validation = table(at_size["validation_accuracy"], at_size)
    best = max(of(at_size, SPARSE), key=validation.get)
    none, chosen = (per_seed(at_size["test_accuracy"], at_size, s) for s in (NONE, best))
    return Check.at_least(mean_interval(chosen - none), 0.0,
                          f"n={at_size['n']:,}: linear classifier on the codes, test accuracy "
                          f"none {none.mean():.3f}, {best[0]} {best[1]:g} (chosen on "
                          f"validation) {chosen.mean():.3f}")


PAIRED = ("per seed, the paired difference {} (the same images, initialisation and minibatches "
          "in every setting), on the test half of the held-out digits; Student's t 95% "
          "interval of its mean over seeds; holds when {} at or above 0, fails when {} below")
CLAIMS = (
    Claim("sparsity penalties make the codes sparse", "the sparse autoencoder: an L1 or KL "
          "penalty on the hidden activations silences most units", "at the largest size, the "
          "strongest L1-activation and KL penalties both raise the silent fraction over no "
          "penalty", check_sparse,
          test=PAIRED.format("silent fraction with the strongest L1-activation (and KL) "
                             "penalty − without penalty, largest size", "both intervals lie",
                             "one lies"), id="sparsity-penalties-make-the-codes-sparse"),
    Claim("weight penalties shrink the generalisation gap", "weight decay and L1 on the weights "
          "fight over-fitting", "at the smallest size the L2 and the L1 weight strength with "
          "the smallest validation gap each give a smaller test gap (held-out − training "
          "error) than no penalty", check_weight_decay,
          test="strength of each weight penalty selected on the validation half (smallest mean "
               "gap), judged on the test half: " + PAIRED.format(
                   "gap without penalty − gap with it, smallest size", "both intervals lie",
                   "one lies"), id="weight-penalties-shrink-the-generalisation-gap"),
    Claim("sparser codes over-fit less", "the notes ask whether sparsity and over-fitting are "
          "linked", "at the smallest size, sparsity and the generalisation gap are negatively "
          "rank-correlated over all settings and seeds", check_link,
          test="Spearman's ρ between test sparsity and test gap over settings × seeds at the "
               "smallest size; 95% percentile bootstrap interval resampling whole settings "
               "(a setting's seeds are one cluster); holds when it lies at or below 0, fails "
               "when it lies above",
          if_fails="a finding: in these autoencoders the sparser codes go with the larger "
                   "generalisation gap, the opposite of the link the notes ask about",
          id="sparser-codes-over-fit-less"),
    Claim("sparse codes help a linear classifier", "a motivation of the sparse autoencoder: "
          "sparse features are easier to read out", "at the largest size, the sparsity-"
          "penalised codes best on validation classify the test half better than the "
          "unpenalised ones", check_classifier,
          test="the L1-activation or KL setting with the best mean validation accuracy, judged "
               "on the test half: " + PAIRED.format(
                   "of linear-classifier accuracy, chosen − no penalty, largest size",
                   "its interval lies", "it lies"), id="sparse-codes-help-a-linear-classifier"),
)


def figures(config: CostConfig, result: dict) -> dict:
    fig, axes = new_figure(ncols=4, width=4.0)
    measures = (("test_error", "held-out reconstruction MSE", "Reconstruction"),
                ("test_sparsity", f"fraction of activations < {SPARSE_BELOW}", "Sparsity"),
                ("test_accuracy", "linear classifier accuracy", "Codes read out linearly"))
    at_size = result["sizes"][-1]
    for ax, (key, label, title) in zip(axes, measures, strict=False):
        values = table(at_size[key], at_size)
        for p in PENALTIES:
            settings = sorted(of(at_size, (p,)))
            ax.plot([s[1] for s in settings], [values[s] for s in settings], "o-",
                    color=COLOURS[p], label=p)
        ax.axhline(values[NONE], color="black", ls=":", label="none")
        ax.set(xscale="log", xlabel="penalty strength", ylabel=label,
               title=f"{title} (n={at_size['n']:,})")
    axes[0].legend(fontsize=7)
    ax = axes[3]
    for size, marker in zip(result["sizes"], "os^v<>", strict=False):
        for (name, _), sparsity, g in zip(size["settings"], size["test_sparsity"], gaps(size),
                                          strict=True):
            ax.scatter(sparsity, g, color=COLOURS[name], marker=marker, s=14)
        ax.scatter([], [], color="gray", marker=marker, label=f"n={size['n']:,}")
    ax.set(xlabel=f"fraction of activations < {SPARSE_BELOW}", ylabel="held-out − training MSE",
           title="Sparsity vs over-fitting")
    ax.legend(fontsize=7)
    return {"cost_functions": fig}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "cost_functions": ("Against penalty strength, per penalty (dotted: none): held-out "
                       "reconstruction error, the codes' sparsity and a linear classifier's "
                       "accuracy on them. Right: the over-fitting gap against sparsity at each "
                       "training-set size."),
}


def work(config: CostConfig, seeds: int) -> float:
    """Cost model units: µs (fitted at default): Adam steps of settings × seeds models."""
    models = len(config.settings()) * seeds
    step = 1_000 + models * (3 * config.batch_size + 10) * 128 * config.hidden / 2e4  # +penalties
    return len(config.samples) * config.steps * step


EXPERIMENT = Experiment(
    name="cost_functions",
    section="the notes' open question; Ng's sparse autoencoder",
    title="Cost-function design: penalties on an autoencoder, sparsity vs over-fitting",
    version=2,
    config_class=CostConfig,
    scales={
        "quick": {"samples": [50, 1_437], "l2_weights": [1e-4, 1e-3],
                  "l1_weights": [1e-5, 1e-4], "l1_activations": [1e-3, 1e-2],
                  "kl_sparsity": [1e-2, 1e-1], "steps": 800},
        "default": {},
        "paper": {"samples": [25, 50, 100, 200, 400, 800, 1_437],
                  "l2_weights": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2],
                  "l1_weights": [1e-7, 1e-6, 1e-5, 1e-4, 1e-3],
                  "l1_activations": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
                  "kl_sparsity": [1e-4, 1e-3, 1e-2, 1e-1, 1.0], "steps": 10_000},
    },
    seeds={"quick": 2, "default": 3, "paper": 8},
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
