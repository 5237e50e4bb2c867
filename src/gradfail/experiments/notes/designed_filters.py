"""Hand-designed first layers: can a fixed Gabor bank (V1-like) match a learned one?

The notes ask whether a first layer designed by hand, oriented edge detectors like the simple
cells of V1, does as well as one learned by gradient descent. The network is one 5×5
convolution of 8 channels, ReLU and a linear read-out (gradfail.nets.convnet), trained by Adam on
scikit-learn's digits (8×8, ten classes) and on the §3 line images (28×28, angle below π/2).
Its first layer (filters and biases) is learned from He initialisation, fixed to a Gabor bank
(4 orientations × even and odd phase), fixed to its random He initialisation, or initialised
to the Gabor bank and then learned. We measure test accuracy against training steps and
against the number of training images, over seeds, and show the learned filters beside the bank.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt, field_validator

from gradfail.data.digits import check_training_sizes
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.maths.statistics import mean_interval
from gradfail.nets import convnet
from gradfail.plotting import band, log_ticks, new_figure, new_grid

VARIANTS = ("learned", "fixed Gabor", "fixed random", "Gabor init, learned")
COLOURS = dict(zip(VARIANTS, ("tab:blue", "tab:orange", "tab:gray", "tab:green"), strict=True))
DATASETS = ("digits", "lines")
MATCH = 0.02  # "matches": within two points of test accuracy


class FiltersConfig(Config):
    """Sizes are ours; the Gabor shape follows the usual V1 model (Daugman 1985)."""

    kernel: int = Field(5, ge=3, le=7, description="filters k × k (digits are 8 × 8)")
    orientations: PositiveInt = Field(4, description="Gabor orientations; × 2 phases = channels")
    wavelength: PositiveFloat = Field(4.0, description="Gabor carrier wavelength (pixels)")
    digit_samples: list[PositiveInt] = Field([50, 200, 800], min_length=2)
    line_samples: list[PositiveInt] = Field([128, 512, 2_048], min_length=2)
    test_samples: PositiveInt = Field(2_000, description="test line images")
    steps: PositiveInt = Field(800)
    evaluations: PositiveInt = Field(10, description="accuracy checkpoints along the steps")
    batch_size: PositiveInt = Field(32)
    lr: PositiveFloat = Field(3e-3, description="Adam")

    @field_validator("digit_samples")
    @classmethod
    def _digits(cls, samples: list[int]) -> list[int]:
        return check_training_sizes(samples)

    @field_validator("evaluations")
    @classmethod
    def _evaluations(cls, evaluations: int, info) -> int:
        if evaluations > info.data.get("steps", 800):
            raise ValueError("more accuracy checkpoints than steps")
        return evaluations


# --------------------------------------------------------------------------------------------
# The Gabor bank.


def gabor_bank(kernel: int, orientations: int, wavelength: float) -> torch.Tensor:
    """(2·orientations, k²) Gabor filters, even (cosine) and odd (sine) phase at each orientation
    θ = iπ/orientations, envelope σ = wavelength/2, aspect 0.5; each zero-mean and scaled to the
    norm √2 that a He-initialised filter has on average."""
    centre = (kernel - 1) / 2
    v, u = torch.meshgrid(torch.arange(kernel) - centre, torch.arange(kernel) - centre,
                          indexing="ij")
    theta = torch.arange(orientations) * math.pi / orientations
    across = u * torch.cos(theta)[:, None, None] + v * torch.sin(theta)[:, None, None]
    along = -u * torch.sin(theta)[:, None, None] + v * torch.cos(theta)[:, None, None]
    sigma = wavelength / 2
    envelope = torch.exp(-(across**2 + (0.5 * along) ** 2) / (2 * sigma**2))
    phase = 2 * math.pi * across / wavelength
    bank = torch.stack((envelope * torch.cos(phase), envelope * torch.sin(phase)), 1)
    bank = bank.flatten(2).flatten(0, 1)
    bank = bank - bank.mean(1, keepdim=True)
    return bank / bank.norm(dim=1, keepdim=True) * math.sqrt(2)


# --------------------------------------------------------------------------------------------
# Training one variant on one data set at one size, seeds batched.


def task(dataset: str, n: int, config: FiltersConfig, ctx: RunContext) -> convnet.Images:
    if dataset == "digits":
        return convnet.digit_task(ctx.n_seeds, n, ctx.generator("digits", n), ctx.device)
    return convnet.line_angle_task(ctx.n_seeds, n, config.test_samples, 28,
                                   ctx.generator("lines", n), ctx.generator("test lines"))


def train(variant: str, dataset: str, n: int, config: FiltersConfig, ctx: RunContext) -> dict:
    images = task(dataset, n, config, ctx)
    channels = 2 * config.orientations
    params = convnet.parameters(ctx.n_seeds, images.side, config.kernel, channels,
                                images.classes, ctx.generator("init", dataset, n))
    if "Gabor" in variant:
        params[0] = gabor_bank(config.kernel, config.orientations, config.wavelength).to(
            ctx.device).expand_as(params[0]).clone()
    fixed = variant.startswith("fixed")
    fitted = convnet.fit(params, images, config.kernel, config.steps, config.batch_size,
                         config.lr, ctx.generator("batches", dataset, n),
                         trainable=(not fixed, not fixed, True, True),
                         evaluate_every=config.steps // config.evaluations)
    return {"variant": variant, "dataset": dataset, "n": n, "steps": fitted["steps"],
            "accuracy": fitted["accuracy"].T.cpu().numpy(),  # (seeds, evaluations)
            "filters": params[0][0].cpu().numpy()}


def run(config: FiltersConfig, ctx: RunContext) -> dict:
    sizes = {"digits": config.digit_samples, "lines": config.line_samples}
    jobs = [(v, d, n) for d in DATASETS for n in sizes[d] for v in VARIANTS]
    runs = []
    with ctx.track("train the four first layers", len(jobs)) as advance:
        for variant, dataset, n in jobs:
            runs.append(ctx.part(f"{dataset} n={n}: {variant}", lambda v=variant, d=dataset,
                                 n=n: train(v, d, n, config, ctx)))
            advance(1)
    return {"runs": runs}


# --------------------------------------------------------------------------------------------
# Claims.



def accuracy(result: dict, variant: str, dataset: str, n: int, checkpoint: int = -1
             ) -> np.ndarray:
    """Test accuracy per seed at one checkpoint (the last by default)."""
    row = next(r for r in result["runs"] if r["variant"] == variant
               and r["dataset"] == dataset and r["n"] == n)
    return np.asarray(row["accuracy"], float)[:, checkpoint]


def largest(result: dict, dataset: str) -> int:
    return max(r["n"] for r in result["runs"] if r["dataset"] == dataset)


def smallest(result: dict, dataset: str) -> int:
    return min(r["n"] for r in result["runs"] if r["dataset"] == dataset)


def compare(result: dict, better: str, worse: str, threshold: float, checkpoint: int = -1
            ) -> Check:
    """On every data set at its largest size, the mean over seeds of the paired difference
    better − worse (the same images, minibatches and read-out initialisation) at least
    `threshold`."""
    parts = {}
    for d in DATASETS:
        n = largest(result, d)
        b, w = (accuracy(result, v, d, n, checkpoint) for v in (better, worse))
        parts[f"{d} (n={n:,})"] = Check.at_least(
            mean_interval(b - w), threshold, f"{better} {b.mean():.3f} − {worse} {w.mean():.3f}"
            f" = {b.mean() - w.mean():+.3f}")
    return Check.all_of(parts)


def check_match(config: FiltersConfig, result: dict) -> Check:
    return compare(result, "fixed Gabor", "learned", -MATCH)


def check_random(config: FiltersConfig, result: dict) -> Check:
    return compare(result, "fixed Gabor", "fixed random", 0.0)


def check_scarce(config: FiltersConfig, result: dict) -> Check:
    parts = {}
    for d in DATASETS:
        few, many = smallest(result, d), largest(result, d)
        edge = {n: accuracy(result, "fixed Gabor", d, n) - accuracy(result, "learned", d, n)
                for n in (few, many)}
        parts[d] = Check.at_least(mean_interval(edge[few] - edge[many]), 0.0,
                                  f"Gabor − learned {edge[few].mean():+.3f} at n={few:,}, "
                                  f"{edge[many].mean():+.3f} at n={many:,}")
    return Check.all_of(parts)


def check_early(config: FiltersConfig, result: dict) -> Check:
    found = compare(result, "Gabor init, learned", "learned", 0.0, checkpoint=0)
    step = config.steps // config.evaluations
    return Check(found.verdict, found.measured, f"after {step} steps: {found.detail}",
                 found.interval)


PAIRED = ("per seed, the paired difference of test accuracy ({}) (the same training images, "
          "minibatch stream and read-out initialisation in every variant); Student's t 95% "
          "interval of its mean over seeds, on each data set; holds when both intervals lie {}, "
          "fails when one lies below")
CLAIMS = (
    Claim("a fixed Gabor bank matches a learned first layer", "the notes ask whether a designed, "
          "V1-like first layer can replace a learned one",
          f"at the largest training set, fixed Gabor within {MATCH:.0%} of learned accuracy on "
          "digits and lines", check_match,
          test=PAIRED.format("fixed Gabor − learned, largest training set",
                             f"at or above −{MATCH}"),
          id="a-fixed-gabor-bank-matches-a-learned-first-layer"),
    Claim("designed filters beat random fixed ones", "if the design matters, oriented filters "
          "should beat random features of the same size", "at the largest training set, fixed "
          "Gabor above fixed random on both data sets", check_random,
          test=PAIRED.format("fixed Gabor − fixed random, largest training set", "at or above 0"),
          id="designed-filters-beat-random-fixed-ones"),
    Claim("the designed prior helps most when data is scarce", "a fixed first layer has fewer "
          "parameters to fit, so its edge over learning should be largest with few images",
          "Gabor − learned accuracy larger at the smallest training set than at the largest, "
          "on both data sets", check_scarce,
          test=PAIRED.format("fixed Gabor − learned at the smallest training set, minus the same "
                             "at the largest", "at or above 0"),
          id="the-designed-prior-helps-most-when-data-is-scarce"),
    Claim("a Gabor initialisation speeds early learning", "starting from oriented filters "
          "should give a head start over He initialisation", "at the first checkpoint (a tenth "
          "of the steps, largest training set) Gabor-initialised above He-initialised, on both",
          check_early,
          test=PAIRED.format("Gabor-initialised − He-initialised, learned, at the first "
                             "checkpoint, largest training set", "at or above 0"),
          id="a-gabor-initialisation-speeds-early-learning"),
)


def figures(config: FiltersConfig, result: dict) -> dict:
    fig, axes = new_figure(ncols=4, width=3.9)
    for column, dataset in enumerate(DATASETS):
        ax_n, ax_t = axes[column], axes[2 + column]
        for variant in VARIANTS:
            rows = sorted((r for r in result["runs"] if r["variant"] == variant
                           and r["dataset"] == dataset), key=lambda r: r["n"])
            band(ax_n, [r["n"] for r in rows], np.array([r["accuracy"] for r in rows])[..., -1].T,
                 variant, COLOURS[variant])
            band(ax_t, rows[-1]["steps"], rows[-1]["accuracy"], variant, COLOURS[variant])
        log_ticks(ax_n, [r["n"] for r in result["runs"] if r["dataset"] == dataset
                         and r["variant"] == VARIANTS[0]])
        ax_n.set(xlabel="training images", ylabel="test accuracy",
                 title=f"{dataset}: accuracy vs samples")
        ax_t.set(xlabel="Adam step", ylabel="test accuracy",
                 title=f"{dataset}: vs steps (n={largest(result, dataset):,})")
    axes[0].legend(fontsize=7)
    banks = {"Gabor bank": gabor_bank(config.kernel, config.orientations, config.wavelength)}
    banks.update({f"learned on {d}": np.asarray(next(
        r for r in result["runs"] if r["variant"] == "learned" and r["dataset"] == d
        and r["n"] == largest(result, d))["filters"]) for d in DATASETS})
    channels = 2 * config.orientations
    fig_banks, grid = new_grid(len(banks), channels, width=0.9, height=1.0)
    for row, (name, bank) in zip(grid, banks.items(), strict=True):
        for ax, kernel in zip(row, np.asarray(bank), strict=True):
            limit = np.abs(kernel).max()
            ax.imshow(kernel.reshape(config.kernel, config.kernel), cmap="RdBu_r", vmin=-limit,
                      vmax=limit)
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
        row[0].set_ylabel(name, fontsize=7)
    fig_banks.suptitle("First-layer filters (seed 0, largest training set)", fontsize=9)
    return {"designed_filters": fig, "designed_filters_banks": fig_banks}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "designed_filters": ("Test accuracy against training images (left two) and over Adam steps on "
                         "the largest set (right two), per data set, for a learned, a fixed Gabor, "
                         "a fixed random and a Gabor-initialised first layer."),
    "designed_filters_banks": ("The first-layer filters: the designed Gabor bank and those learned "
                               "on each data set (seed 0, largest training set)."),
}


def work(config: FiltersConfig, seeds: int) -> float:
    """Cost model units: µs (fitted at default): Adam steps and test evaluations."""
    def per_run(side: int, classes: int, test: int) -> float:
        image = (side - config.kernel + 1) ** 2 * 2 * config.orientations \
            * (config.kernel**2 + classes) / 1.5e3  # µs a forward
        return (config.steps * (500 + 2 * seeds * config.batch_size * image)
                + config.evaluations * seeds * test * image)
    return len(VARIANTS) * (len(config.digit_samples) * per_run(8, 10, 360)
                            + len(config.line_samples) * per_run(28, 2, config.test_samples))


EXPERIMENT = Experiment(
    name="designed_filters",
    section="the notes' open question; V1 simple cells",
    title="Hand-designed first layers: fixed Gabor vs learned vs random",
    version=3,
    config_class=FiltersConfig,
    scales={
        "quick": {"digit_samples": [50, 400], "line_samples": [128, 1_024], "steps": 300,
                  "test_samples": 500},
        "default": {},
        "paper": {"digit_samples": [25, 50, 100, 200, 400, 800, 1_437],
                  "line_samples": [64, 128, 256, 512, 1_024, 2_048, 4_096, 8_192],
                  "steps": 3_000, "test_samples": 8_000},
    },
    seeds={"quick": 2, "default": 3, "paper": 8},
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
