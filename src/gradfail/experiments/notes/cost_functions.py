"""Cost-function design: an autoencoder on digits with and without penalties on its cost.

The notes ask what terms added to the cost do, and whether sparsity and over-fitting are
linked. An autoencoder 64 → 100 (sigmoid) → 64 (linear) reconstructs scikit-learn's digits
(raw intensities in [0, 1]) by mean squared error, alone or with one penalty: L2 weight decay,
L1 on the weights, L1 on the hidden activations, or the sparse autoencoder's KL penalty
β·Σⱼ KL(ρ ‖ ρ̂ⱼ) (Ng's notes, ρ = 0.05), at several strengths and training-set sizes. Every
setting × seed is one model of a batch trained together by Adam. Measured: held-out
reconstruction error, the generalisation gap (held-out − training error), hidden sparsity (the
fraction of held-out activations below 0.1), and the accuracy of a ridge-regression linear
classifier fitted on the codes of the whole training split.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.stats
import torch
from pydantic import Field, PositiveFloat, PositiveInt, field_validator

from gradfail.data.digits import check_training_sizes, digit_images, split
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext, check_finite
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
    train_split, test_split = (part.to(ctx.device) for part in split(ctx.generator("split")))
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
    params = [p.requires_grad_(True) for p in initial(models, config.hidden,
                                                        ctx.generator("init", n))]
    adam = torch.optim.Adam(params, lr=config.lr)
    batches = ctx.generator("batches", n)
    for _ in range(config.steps):
        pick = torch.randint(n, (models, config.batch_size), generator=batches,
                             device=ctx.device)
        x = train_x.gather(1, pick[..., None].expand(-1, -1, 64))
        error, codes = reconstruction_error(params, x)
        loss = (error + penalty(params, codes, strengths, config.sparsity_target)).sum()
        check_finite(loss, f"the autoencoders at n={n}")
        adam.zero_grad(set_to_none=True)
        loss.backward()
        adam.step()
    with torch.no_grad():
        test_x = images[test_split].expand(models, -1, -1)
        train_error, _ = reconstruction_error(params, train_x)
        test_error, test_codes = reconstruction_error(params, test_x)
        accuracy = ridge_accuracy(encode(params, images[train_split].expand(models, -1, -1)),
                                  labels[train_split], test_codes, labels[test_split])

    def per_setting(values: torch.Tensor) -> list:
        return values.view(len(settings), ctx.n_seeds).cpu().numpy()
    return {"n": n, "settings": settings, "train_error": per_setting(train_error),
            "test_error": per_setting(test_error),
            "sparsity": per_setting((test_codes < SPARSE_BELOW).float().mean((1, 2))),
            "mean_activation": per_setting(test_codes.mean((1, 2))),
            "accuracy": per_setting(accuracy)}


def run(config: CostConfig, ctx: RunContext) -> dict:
    sizes = []
    with ctx.track("autoencoders by training-set size", len(config.samples)) as advance:
        for n in config.samples:
            sizes.append(ctx.part(f"n={n}", lambda n=n: train(n, config, ctx)))
            advance(1)
    return {"sizes": sizes}


# --------------------------------------------------------------------------------------------
# Claims.


def table(at_size: dict, key: str) -> dict[tuple[str, float], float]:
    """{(penalty, strength): mean over seeds of a measure} at one size."""
    return {tuple(s): float(np.mean(v)) for s, v in zip(at_size["settings"], at_size[key],
                                                         strict=True)}


def gap(at_size: dict) -> dict[tuple[str, float], float]:
    test, train_ = table(at_size, "test_error"), table(at_size, "train_error")
    return {s: test[s] - train_[s] for s in test}


def strongest(at_size: dict, penalty_name: str) -> tuple[str, float]:
    return max((tuple(s) for s in at_size["settings"] if s[0] == penalty_name),
               key=lambda s: s[1])


def check_sparse(config: CostConfig, result: dict) -> Check:
    at_size = result["sizes"][-1]
    sparsity = table(at_size, "sparsity")
    none = sparsity[("none", 0.0)]
    rises = {p: sparsity[strongest(at_size, p)] - none for p in ("L1 activations", "KL sparsity")}
    return Check.judge(all(r > 0 for r in rises.values()), min(rises.values()), "; ".join(
        f"{p} {strongest(at_size, p)[1]:g}: {sparsity[strongest(at_size, p)]:.0%} silent" for p in
        rises) + f"; none: {none:.0%} silent (n={at_size['n']:,}, activations < {SPARSE_BELOW})")


def check_weight_decay(config: CostConfig, result: dict) -> Check:
    at_size = result["sizes"][0]
    gaps = gap(at_size)
    best = {p: min((s for s in gaps if s[0] == p), key=gaps.get)
            for p in ("L2 weights", "L1 weights")}
    shrink = {p: gaps[("none", 0.0)] - gaps[s] for p, s in best.items()}
    return Check.judge(all(v > 0 for v in shrink.values()), min(shrink.values()), f"n="
                       f"{at_size['n']}: gap (held-out − training MSE) none "
                       f"{gaps[('none', 0.0)]:.4f}; " + "; ".join(
                           f"{p} {s[1]:g}: {gaps[s]:.4f}" for p, s in best.items()))


def sparsity_gap_correlations(result: dict) -> list[tuple[int, float, float]]:
    """(n, Spearman ρ, p) between sparsity and generalisation gap over settings × seeds."""
    correlations = []
    for size in result["sizes"]:
        gaps = np.asarray(size["test_error"]) - np.asarray(size["train_error"])
        rho, p = scipy.stats.spearmanr(np.ravel(size["sparsity"]), np.ravel(gaps))
        correlations.append((size["n"], float(rho), float(p)))
    return correlations


def check_link(config: CostConfig, result: dict) -> Check:
    correlations = sparsity_gap_correlations(result)
    n, rho, p = correlations[0]
    return Check.judge(rho < 0 and p < 0.05, rho, "Spearman ρ(sparsity, gap) " + "; ".join(
        f"n={size:,}: {r:+.2f} (p={q:.1g})" for size, r, q in correlations))


def check_classifier(config: CostConfig, result: dict) -> Check:
    at_size = result["sizes"][-1]
    accuracy = table(at_size, "accuracy")
    best = max((s for s in accuracy if s[0] in ("L1 activations", "KL sparsity")),
               key=accuracy.get)
    gain = accuracy[best] - accuracy[("none", 0.0)]
    return Check.judge(gain > 0, gain, f"n={at_size['n']:,}: linear classifier on the codes, "
                       f"none {accuracy[('none', 0.0)]:.3f}, best sparse {best[0]} {best[1]:g} "
                       f"{accuracy[best]:.3f}")


CLAIMS = (
    Claim("sparsity penalties make the codes sparse", "the sparse autoencoder: an L1 or KL "
          "penalty on the hidden activations silences most units", "at the largest size, the "
          "strongest L1-activation and KL penalties both raise the silent fraction over no "
          "penalty", check_sparse),
    Claim("weight penalties shrink the generalisation gap", "weight decay and L1 on the weights "
          "fight over-fitting", "at the smallest size the best L2 and the best L1 weight "
          "strength each give a smaller held-out − training error gap than no penalty",
          check_weight_decay),
    Claim("sparser codes over-fit less", "the notes ask whether sparsity and over-fitting are "
          "linked", "at the smallest size, sparsity and the generalisation gap are negatively "
          "rank-correlated over all settings and seeds (Spearman, p < 0.05)", check_link),
    Claim("sparse codes help a linear classifier", "a motivation of the sparse autoencoder: "
          "sparse features are easier to read out", "at the largest size, the best sparsity-"
          "penalised codes classify better than the unpenalised ones", check_classifier),
)


def figures(config: CostConfig, result: dict) -> dict:
    fig, axes = new_figure(ncols=4, width=4.0)
    measures = (("test_error", "held-out reconstruction MSE", "Reconstruction"),
                ("sparsity", f"fraction of activations < {SPARSE_BELOW}", "Sparsity"),
                ("accuracy", "linear classifier accuracy", "Codes read out linearly"))
    at_size = result["sizes"][-1]
    for ax, (key, label, title) in zip(axes, measures, strict=False):
        values = table(at_size, key)
        for p in PENALTIES:
            settings = sorted(s for s in values if s[0] == p)
            ax.plot([s[1] for s in settings], [values[s] for s in settings], "o-",
                    color=COLOURS[p], label=p)
        ax.axhline(values[("none", 0.0)], color="black", ls=":", label="none")
        ax.set(xscale="log", xlabel="penalty strength", ylabel=label,
               title=f"{title} (n={at_size['n']:,})")
    axes[0].legend(fontsize=7)
    ax = axes[3]
    for size, marker in zip(result["sizes"], "os^v<>", strict=False):
        gaps = np.asarray(size["test_error"]) - np.asarray(size["train_error"])
        for (name, _), sparsity, g in zip(size["settings"], size["sparsity"], gaps, strict=True):
            ax.scatter(sparsity, g, color=COLOURS[name], marker=marker, s=14)
        ax.scatter([], [], color="gray", marker=marker, label=f"n={size['n']:,}")
    ax.set(xlabel=f"fraction of activations < {SPARSE_BELOW}", ylabel="held-out − training MSE",
           title="Sparsity vs over-fitting")
    ax.legend(fontsize=7)
    return {"cost_functions": fig}


EXPERIMENT = Experiment(
    name="cost_functions",
    section="the notes' open question; Ng's sparse autoencoder",
    title="Cost-function design: penalties on an autoencoder, sparsity vs over-fitting",
    version=1,
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
    run=run,
    figures=figures,
    claims=CLAIMS,
)
