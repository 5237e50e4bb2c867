"""Skipping flat neighbourhoods: a convolution that computes only where the patch varies.

The notes suggest not computing where a neighbourhood's variance is tiny. A patch whose pixels
are all equal to m gives exactly m·Σw + b, so the skipping convolution fills every position with
that rank-one "flat" answer from the patch mean, and computes the filter bank only on the
patches whose variance exceeds a threshold (gathered by index, no loop over positions). At
threshold 0 it is exact. A small network (3×3 convolution, 16 channels, ReLU, linear read-out)
is trained densely on scikit-learn's digits and on the §3 line images with background noise;
then, over thresholds, we measure the fraction of patches skipped, the accuracy with the
skipping layer, and its measured wall time against the dense convolution, timed back to back.
The held-out images are cut in two halves: the threshold is chosen on the first (validation),
and the claims are judged on the second (test).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.maths.statistics import mean_interval, median_interval
from gradfail.maths.timing import median_seconds
from gradfail.nets import convnet
from gradfail.plotting import band, new_figure

DATASETS = ("digits", "lines")
ACCURACY_TOLERANCE = 0.01  # "no accuracy cost": within one point of the dense layer
MOST = 0.5  # "most patches": at least half skipped


class SkipConfig(Config):
    """All sizes are ours (the notes give none); lines are the §3.1 images of
    Shalev-Shwartz et al. 2017."""

    thresholds: list[NonNegativeFloat] = Field(
        [0.0, 0.001, 0.003, 0.01, 0.02, 0.04, 0.08, 0.16], min_length=2,
        description="patch variance (intensities in [0, 1]) at or below which a patch is skipped")
    kernel: PositiveInt = Field(3, le=7, description="filters k × k (digits are 8 × 8)")
    channels: PositiveInt = Field(16)
    line_size: int = Field(28, ge=12, description="line image side")
    line_noise: NonNegativeFloat = Field(0.1, description="std of the Gaussian background noise")
    line_samples: PositiveInt = Field(2_000, description="training line images per seed")
    digit_samples: PositiveInt = Field(1_437, le=1_437, description="training digits per seed")
    test_samples: PositiveInt = Field(2_000, description="validation and test line images, "
                                      "each")
    steps: PositiveInt = Field(600)
    batch_size: PositiveInt = Field(64)
    lr: PositiveFloat = Field(3e-3, description="Adam")
    timing_repeats: PositiveInt = Field(7, description="median of this many timed passes")


# --------------------------------------------------------------------------------------------
# The skipping convolution: one filter bank (channels, k²), images (batch, side, side).


def patch_statistics(x: torch.Tensor, kernel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of every k × k patch, (batch, p, p) each, by two box filters."""
    mean = F.avg_pool2d(x[:, None], kernel, stride=1)[:, 0]
    return mean, F.avg_pool2d(x[:, None].square(), kernel, stride=1)[:, 0] - mean.square()


def skip_convolution(x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor, kernel: int,
                     threshold: float) -> tuple[torch.Tensor, float]:
    """(output (batch, channels, p, p), fraction of patches skipped). Patches with variance at
    most `threshold` get the flat answer mean·Σw + b; only the others meet the filters."""
    mean, variance = patch_statistics(x, kernel)
    out = mean[..., None] * filters.sum(1) + bias  # (batch, p, p, channels)
    image, row, col = torch.nonzero(variance > threshold, as_tuple=True)
    offsets = torch.arange(kernel, device=x.device)
    square = (-1, kernel, kernel)
    rows = (row[:, None, None] + offsets[:, None]).expand(square).flatten(1)  # unfold's order
    cols = (col[:, None, None] + offsets[None, :]).expand(square).flatten(1)
    out[image, row, col] = torch.addmm(bias, x[image[:, None], rows, cols], filters.T)
    return out.permute(0, 3, 1, 2), 1 - len(image) / variance.numel()


def dense_convolution(x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor, kernel: int
                      ) -> torch.Tensor:
    return F.conv2d(x[:, None], filters.view(-1, 1, kernel, kernel), bias)


def im2col_convolution(x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor, kernel: int
                       ) -> torch.Tensor:
    """The dense convolution written as the skipping one is: unfold every patch, one matmul."""
    side = x.shape[-1] - kernel + 1
    out = torch.addmm(bias, F.unfold(x[:, None], kernel).transpose(1, 2).flatten(0, 1),
                      filters.T)
    return out.view(len(x), side, side, -1).permute(0, 3, 1, 2)


# --------------------------------------------------------------------------------------------
# The tasks, the dense training, and the sweep over thresholds.


def task(dataset: str, config: SkipConfig, ctx: RunContext) -> convnet.Images:
    if dataset == "digits":
        return convnet.digit_task(ctx.n_seeds, config.digit_samples, ctx.generator("digits"),
                                  ctx.device)
    lines = convnet.line_angle_task(ctx.n_seeds, config.line_samples, 2 * config.test_samples,
                                    config.line_size, ctx.generator("lines"),
                                    ctx.generator("test lines"))
    noise = ctx.generator("noise")

    def noisy(images: torch.Tensor) -> torch.Tensor:
        return images + config.line_noise * torch.randn(images.shape, generator=noise,
                                                        device=noise.device)
    return convnet.Images(noisy(lines.train_x), lines.train_y, noisy(lines.test_x),
                          lines.test_y)


def skip_features(params: list[torch.Tensor], x: torch.Tensor, kernel: int, threshold: float
                  ) -> torch.Tensor:
    """The skipping layer's pre-activations for every seed, laid out as convnet.features."""
    filters, bias = params[0], params[1][..., 0]
    return torch.stack([skip_convolution(x, filters[s], bias[s], kernel, threshold)[0].flatten(2)
                        for s in range(len(filters))])


def accuracy(params: list[torch.Tensor], features: torch.Tensor, labels: torch.Tensor
             ) -> np.ndarray:
    """Accuracy per seed of the read-out on first-layer pre-activations (seeds, batch, ...)."""
    right = convnet.read_out(params, features).argmax(-1) == labels
    return right.float().mean(1).cpu().numpy()


def speedups(x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor, kernel: int,
             threshold: float, repeats: int) -> list[float]:
    """Dense time / skipping time, once per repeat, the two timed back to back after one
    warm-up call each, so that a passing load slows both."""
    def dense() -> torch.Tensor:
        return dense_convolution(x, filters, bias, kernel)

    def skipping() -> tuple[torch.Tensor, float]:
        return skip_convolution(x, filters, bias, kernel, threshold)
    dense(), skipping()
    ratios = []
    for _ in range(repeats):
        start = time.perf_counter()
        dense()
        middle = time.perf_counter()
        skipping()
        ratios.append((middle - start) / (time.perf_counter() - middle))
    return ratios


def sweep(dataset: str, config: SkipConfig, ctx: RunContext) -> dict:
    images = task(dataset, config, ctx)
    params = convnet.parameters(ctx.n_seeds, images.side, config.kernel, config.channels,
                                images.classes, ctx.generator("init", dataset))
    convnet.fit(params, images, config.kernel, config.steps, config.batch_size, config.lr,
                ctx.generator("batches", dataset))
    half = len(images.test_x) // 2
    halves = {"validation": (images.test_x[:half], images.test_y[:half]),
              "test": (images.test_x[half:], images.test_y[half:])}
    x, filters, bias = images.test_x[half:], params[0], params[1][..., 0]
    variance = patch_statistics(x, config.kernel)[1]
    rows = []
    with torch.no_grad():
        dense = {name: accuracy(params, convnet.features(
                     params, images_x.expand(ctx.n_seeds, -1, -1, -1), config.kernel), labels)
                 for name, (images_x, labels) in halves.items()}
        exact = max(float((skip_convolution(x, filters[s], bias[s], config.kernel, 0.0)[0]
                           - dense_convolution(x, filters[s], bias[s], config.kernel)).abs().max())
                    for s in range(ctx.n_seeds))
        for threshold in config.thresholds:
            row = {"threshold": threshold,
                   "validation_skipped": skip_convolution(halves["validation"][0], filters[0],
                                                          bias[0], config.kernel, threshold)[1],
                   "test_skipped_patches": (variance <= threshold).sum((1, 2)).cpu().numpy(),
                   "speedups": speedups(x, filters[0], bias[0], config.kernel, threshold,
                                        config.timing_repeats)}
            for name, (images_x, labels) in halves.items():
                row[f"{name}_accuracy"] = accuracy(params, skip_features(
                    params, images_x, config.kernel, threshold), labels)
            rows.append(row)
        seconds = {name: median_seconds(lambda f=f: f(x, filters[0], bias[0], config.kernel),
                                        config.timing_repeats)
                   for name, f in (("dense", dense_convolution), ("im2col", im2col_convolution))}
    return {"dataset": dataset, "dense_accuracy": dense, "rows": rows,
            "dense_seconds": seconds["dense"], "im2col_seconds": seconds["im2col"],
            "max_error_at_zero": exact, "images": len(x), "patches": variance[0].numel()}


def run(config: SkipConfig, ctx: RunContext) -> dict:
    with ctx.track("train densely, then skip", len(DATASETS)) as advance:
        sweeps = []
        for dataset in DATASETS:
            sweeps.append(ctx.part(dataset, lambda d=dataset: sweep(d, config, ctx)))
            advance(1)
    return {"sweeps": sweeps}


# --------------------------------------------------------------------------------------------
# Claims.



def chosen(sweep: dict) -> dict:
    """The threshold chosen on the validation half: the one skipping the most patches there
    whose mean validation accuracy is within the tolerance of the dense layer's (threshold 0
    always is: it is exact)."""
    dense = float(np.mean(sweep["dense_accuracy"]["validation"]))
    free = [r for r in sweep["rows"]
            if np.mean(r["validation_accuracy"]) >= dense - ACCURACY_TOLERANCE]
    return max(free, key=lambda r: r["validation_skipped"])


def check_exact(config: SkipConfig, result: dict) -> Check:
    errors = {s["dataset"]: s["max_error_at_zero"] for s in result["sweeps"]}
    return Check.judge(max(errors.values()) <= 1e-4, max(errors.values()),
                       "; ".join(f"{d}: max |skip − dense| {e:.1e} at threshold 0"
                                 for d, e in errors.items()))


def check_free(config: SkipConfig, result: dict) -> Check:
    parts = {}
    for sweep in result["sweeps"]:
        row, name = chosen(sweep), sweep["dataset"]
        skipped = np.asarray(row["test_skipped_patches"]) / sweep["patches"]
        dense = np.asarray(sweep["dense_accuracy"]["test"])
        loss = np.asarray(row["test_accuracy"]) - dense
        parts[f"{name} skipped"] = Check.at_least(
            mean_interval(skipped), MOST, f"{skipped.mean():.0%} of the test patches at variance "
            f"≤ {row['threshold']:g} (chosen on the validation half)")
        parts[f"{name} accuracy"] = Check.at_least(
            mean_interval(loss), -ACCURACY_TOLERANCE, f"test accuracy "
            f"{np.mean(row['test_accuracy']):.3f} vs dense {dense.mean():.3f}")
    return Check.all_of(parts)


def check_time(config: SkipConfig, result: dict) -> Check:
    parts = {}
    for sweep in result["sweeps"]:
        row = chosen(sweep)
        parts[f"{sweep['dataset']} ({sweep['images']:,} images)"] = Check.at_least(
            median_interval(row["speedups"]), 1.0, f"dense conv2d "
            f"{sweep['dense_seconds'] * 1e3:.1f} ms (im2col {sweep['im2col_seconds'] * 1e3:.1f})"
            f", skipping at variance ≤ {row['threshold']:g}: dense / skipping time "
            f"× {np.median(row['speedups']):.2f}")
    return Check.all_of(parts)


CLAIMS = (
    Claim("the flat answer is exact on flat patches", "a constant patch m gives m·Σw + b, so a "
          "neighbourhood of zero variance need not meet the filters",
          "at threshold 0 the skipping layer equals the dense convolution, |Δ| ≤ 1e-4, on "
          "both data sets", check_exact, kind="sanity",
          id="the-flat-answer-is-exact-on-flat-patches"),
    Claim("most neighbourhoods can be skipped without losing accuracy", "the notes: where a "
          "neighbourhood's variance is tiny there is nothing to compute",
          f"the threshold chosen on validation images skips ≥ {MOST:.0%} of test patches with "
          f"test accuracy within {ACCURACY_TOLERANCE:.0%} of the dense layer, on both data sets",
          check_free,
          test="threshold chosen on the validation half (most patches skipped with mean "
               f"accuracy within {ACCURACY_TOLERANCE} of dense), judged on the test half: the "
               "fraction of each test image's patches skipped, Student's t 95% interval of its "
               f"mean over test images, at or above {MOST}; and per seed the paired accuracy "
               "difference skipping − dense (the same network and images), t 95% interval of its "
               f"mean over seeds, at or above −{ACCURACY_TOLERANCE}; holds when all four "
               "(two data sets) hold, fails when one fails",
          if_fails="a finding: digit strokes leave few flat patches (about a tenth at a "
                   "threshold that keeps accuracy), while the noisy lines are mostly flat",
          id="most-neighbourhoods-can-be-skipped-without-losing-accuracy"),
    Claim("skipping saves wall time", "the notes: skipping flat neighbourhoods saves compute",
          "at that threshold the skipping layer is measured faster than the dense convolution "
          "(torch's conv2d) on both data sets", check_time,
          test="at the threshold chosen on validation, per repeat the ratio dense time / "
               "skipping time on the test half, the two timed back to back; the distribution-free "
               "order-statistic interval of its median over repeats, on each data set; holds "
               "when both lie at or above 1, fails when one lies below",
          if_fails="a finding: gathering the patches left to compute costs more than torch's "
                   "fused conv2d spends on all of them, even with most of them skipped",
          id="skipping-saves-wall-time"),
)


def figures(config: SkipConfig, result: dict) -> dict:
    fig, (ax_skip, ax_acc, ax_time) = new_figure(ncols=3, width=4.4)
    for sweep, colour in zip(result["sweeps"], ("tab:blue", "tab:orange"), strict=True):
        rows, name = sweep["rows"], sweep["dataset"]
        thresholds = [r["threshold"] for r in rows]
        skipped = [np.mean(r["test_skipped_patches"]) / sweep["patches"] for r in rows]
        ax_skip.plot(thresholds, skipped, "o-", color=colour, label=name)
        band(ax_acc, thresholds, np.array([r["test_accuracy"] for r in rows]).T, name, colour)
        ax_acc.axhline(np.mean(sweep["dense_accuracy"]["test"]), color=colour, ls=":", lw=1)
        ax_time.plot(skipped, [1 / np.median(r["speedups"]) for r in rows], "o-",
                     color=colour, label=f"{name}: skipping")
        ax_time.axhline(sweep["im2col_seconds"] / sweep["dense_seconds"], color=colour,
                        ls="--", lw=1, label=f"{name}: dense im2col")
    for ax in (ax_skip, ax_acc):
        ax.set_xscale("symlog", linthresh=min(t for t in config.thresholds if t > 0))
        ax.set(xlabel="variance threshold", xlim=(0, None))
    ax_skip.set(ylabel="fraction of test patches skipped", title="Flat neighbourhoods")
    ax_acc.set(ylabel="test accuracy", title="Accuracy with skipping (dotted: dense)")
    ax_time.axhline(1, color="black", lw=1)
    ax_time.set(xlabel="fraction of patches skipped", ylabel="time / dense conv2d",
                yscale="log", title="Wall time (below 1 saves)")
    for ax in (ax_skip, ax_acc, ax_time):
        ax.legend(fontsize=7)
    return {"skip_flat": fig}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "skip_flat": ("Against the variance threshold under which a patch counts as flat: the fraction "
                  "of test patches skipped and the test accuracy with skipping (dotted: dense). "
                  "Right: wall time over a dense conv2d against the fraction skipped (below 1 "
                  "saves; dashed: dense im2col)."),
}


def work(config: SkipConfig, seeds: int) -> float:
    """Cost model units: µs (fitted at default): dense training, then the skipping sweep."""
    lines, digits = ((side - config.kernel + 1) ** 2 for side in (config.line_size, 8))  # patches
    image = config.channels * (lines * (config.kernel**2 + 2) + digits * (config.kernel**2 + 10))
    calls = len(config.thresholds) * (2 * seeds + 2 + config.timing_repeats)  # skipping passes
    sweep = 0.034 * config.kernel**2 * (config.test_samples * lines + 180 * digits)
    return config.steps * (1_000 + 2 * seeds * config.batch_size * image / 1.5e3) + calls * sweep


EXPERIMENT = Experiment(
    name="skip_flat",
    section="the notes' open question",
    title="Skipping flat neighbourhoods: fraction skipped, accuracy, wall time",
    version=2,
    config_class=SkipConfig,
    scales={
        "quick": {"thresholds": [0.0, 0.01, 0.04], "line_samples": 500, "digit_samples": 500,
                  "test_samples": 500, "steps": 200, "timing_repeats": 3},
        "default": {},
        "paper": {"thresholds": [0.0, 0.0003, 0.001, 0.002, 0.003, 0.005, 0.01, 0.015, 0.02,
                                 0.03, 0.04, 0.06, 0.08, 0.12], "steps": 2_000,
                  "line_samples": 8_000, "test_samples": 8_000, "timing_repeats": 21},
    },
    seeds={"quick": 2, "default": 3, "paper": 8},
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
