"""Under- and over-fitting on digits, the remedies measured one by one, and double descent.

The folklore (e.g. Goodfellow, Bengio & Courville 2016, §5.2 and ch. 7): too little capacity
underfits, too much overfits, more data closes the gap, and L2, dropout (Srivastava et al.
2014), early stopping, data augmentation and learning-rate decay each buy generalisation.
Measured here, as effect sizes with 95% confidence intervals over seeds, on scikit-learn's
digits with a ReLU MLP trained by SGD with momentum:

- train and test accuracy over hidden width at a fixed training-set size, and over the
  training-set size at a fixed width;
- at n = 200 labelled images, each remedy alone and all together against the plain net: the
  change in test accuracy and in the generalisation gap (train − test accuracy), paired by seed
  (same subset, same init, same test images). Every arm trains on the same 160 images; the
  other 40 are a validation set that only early stopping looks at (to pick its step), so early
  stopping has neither less training data than the baseline nor more;
- double descent (Belkin et al. 2019): minimum-norm least squares on random ReLU features,
  test error against the number of features p, peaking where p reaches n.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt, field_validator

from gradfail.data.digits import digits
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext, slug
from gradfail.maths.statistics import CONFIDENCE, Interval, mean_interval
from gradfail.nets.batched import mlp_forward, mlp_parameters
from gradfail.nets.deep import expand_models
from gradfail.plotting import band, log_ticks, new_figure

REMEDIES = ("L2", "dropout", "early stopping", "augmentation", "lr decay")
# "Improves", "falls", "shrinks": an effect strictly above 0, so an interval that only touches
# 0 (a bootstrap over 3 seeds, one of which changed no prediction) is inconclusive.
ABOVE_ZERO = math.ulp(0.0)


class FittingConfig(Config):
    """Sizes are ours: digits has 1,437 training images after the 20% test split."""

    widths: list[PositiveInt] = Field([2, 4, 8, 16, 32, 64, 128, 256, 512], min_length=2)
    width_n: PositiveInt = Field(200, description="training images in the width sweep")
    sizes: list[PositiveInt] = Field([25, 50, 100, 200, 400, 800, 1_400], min_length=2)
    size_width: PositiveInt = Field(256, description="hidden width in the size sweep")
    remedy_n: PositiveInt = Field(200, description="labelled images for the remedies: "
                                  "training plus validation")
    remedy_width: PositiveInt = Field(256)
    steps: PositiveInt = Field(3_000, description="SGD steps of every run")
    batch_size: PositiveInt = Field(32)
    lr: PositiveFloat = Field(0.01, description="SGD learning rate, momentum 0.9")
    weight_decay: PositiveFloat = Field(1e-3, description="the L2 remedy's λ")
    dropout: float = Field(0.5, gt=0, lt=1, description="the dropout remedy's drop rate")
    validation_fraction: float = Field(0.2, gt=0, lt=1, description="of remedy_n, held out "
                                       "from every arm; only early stopping reads it")
    max_shift: float = Field(1.0, ge=0, description="augmentation: pixels of random shift")
    max_rotation: float = Field(10.0, ge=0, description="augmentation: degrees of rotation")
    eval_every: PositiveInt = Field(50)
    features: list[PositiveInt] = Field([10, 25, 50, 100, 150, 200, 250, 300, 400, 800, 1_600,
                                         3_200], min_length=3, description="random features p")
    features_n: PositiveInt = Field(200, description="training images for double descent")

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, sizes: list[int]) -> list[int]:
        if max(sizes) > 1_437:
            raise ValueError("digits has 1,437 training images; sizes must not exceed it")
        return sizes


# --------------------------------------------------------------------------------------------
# One training run per setting, the seeds batched: each seed its own subset and init.


def subsets(n: int, ctx: RunContext, key: str) -> torch.Tensor:
    """(seeds, n) indices into the training split, a different random subset per seed."""
    generator = ctx.generator("subset", key, n)
    return torch.stack([torch.randperm(1_437, generator=generator, device=ctx.device)[:n]
                        for _ in range(ctx.n_seeds)])


def augment(images: torch.Tensor, config: FittingConfig, generator: torch.Generator
            ) -> torch.Tensor:
    """Random shifts (± max_shift pixels) and rotations (± max_rotation°) of 8×8 images,
    by `affine_grid` + `grid_sample`; images (..., 64) standardised."""
    flat = images.reshape(-1, 1, 8, 8)
    count, device = len(flat), images.device
    angle = (torch.rand(count, generator=generator, device=device) * 2 - 1) * math.radians(
        config.max_rotation)
    shift = (torch.rand(count, 2, generator=generator, device=device) * 2 - 1) * (
        config.max_shift * 2 / 8)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(flat.shape), align_corners=False)
    moved = torch.nn.functional.grid_sample(flat, grid, padding_mode="border",
                                            align_corners=False)
    return moved.reshape(images.shape)


def train(config: FittingConfig, n: int, width: int, remedies: tuple[str, ...],
          ctx: RunContext, key: str, held: int = 0) -> dict:
    """Train/test accuracy curves per seed for a two-hidden-layer ReLU MLP (64-w-w-10), and
    which test images each seed gets right at its final step.

    The first `held` of the n images are held out: the net trains on the other n − held.
    Early stopping reads them as its validation set and reports the step of best validation
    accuracy; every other arm ignores them."""
    if "early stopping" in remedies and not held:
        raise ValueError("early stopping needs held-out images")
    data = digits(ctx.generator("digits"), ctx.device)
    chosen = subsets(n, ctx, key)
    train_index = chosen[:, held:]
    valid_index = chosen[:, :held] if "early stopping" in remedies else chosen[:, :0]
    train_x, train_y = data["train_x"][train_index], data["train_y"][train_index]
    generator = ctx.generator("init", key, n, width)
    params = [p.requires_grad_(True) for p in mlp_parameters(
        ctx.n_seeds, [64, width, width, 10], generator, ctx.device)]
    optimiser, schedule = sgd_with_remedies(config, params, remedies)
    noise = ctx.generator("noise", key, n, width)
    drop = config.dropout if "dropout" in remedies else 0.0

    def dropped(h):  # ReLU, then inverted dropout drawn from our seeded generator
        h = torch.relu(h)
        keep = torch.rand(h.shape, generator=noise, device=h.device) >= drop
        return h * keep / (1 - drop)

    def forward(x, training):
        return mlp_forward(params, x, dropped if training and drop else torch.relu)

    def correct(x, y):  # (seeds, images): which images each seed classifies right
        with torch.no_grad():
            return (forward(x, False).argmax(-1) == y).cpu().numpy()

    test_x = expand_models(data["test_x"], ctx.n_seeds)
    curves = {"train": [], "test_correct": [], "validation": []}
    steps = []
    for step in range(config.steps + 1):
        if step % config.eval_every == 0 or step == config.steps:
            steps.append(step)
            curves["train"].append(correct(train_x, train_y).mean(1))
            curves["test_correct"].append(correct(test_x, data["test_y"]))
            if valid_index.shape[1]:
                curves["validation"].append(correct(data["train_x"][valid_index],
                                                    data["train_y"][valid_index]).mean(1))
        if step == config.steps:
            break
        pick = torch.randint(train_x.shape[1], (ctx.n_seeds, config.batch_size),
                             generator=noise, device=ctx.device)
        x = train_x.gather(1, pick[..., None].expand(-1, -1, 64))
        if "augmentation" in remedies:
            x = augment(x, config, noise)
        logits = forward(x, True)
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), train_y.gather(1, pick),
                                                 reduction="none").mean(1)
        optimiser.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimiser.step()
        if schedule is not None:
            schedule.step()
    return {"n": n, "trained_on": n - held, "width": width, "remedies": list(remedies),
            "steps": steps, **final_accuracies(curves, ctx.n_seeds)}


def sgd_with_remedies(config: FittingConfig, params: list[torch.Tensor],
                      remedies: tuple[str, ...]):
    """SGD with momentum 0.9; weight decay for "L2", a cosine schedule for "lr decay"."""
    optimiser = torch.optim.SGD(params, lr=config.lr, momentum=0.9,
                                weight_decay=config.weight_decay if "L2" in remedies else 0.0)
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.steps)
                if "lr decay" in remedies else None)
    return optimiser, schedule


def final_accuracies(curves: dict[str, list], n_seeds: int) -> dict:
    """The accuracy curves per seed, and the final ones: at the last step, or, with a
    validation set (early stopping), at each seed's best validation step; with them, which
    test images each seed gets right there (seeds, images)."""
    correct = np.array(curves["test_correct"])  # (evals, seeds, images)
    train_acc, test_acc = np.array(curves["train"]).T, correct.mean(2).T
    at = np.full(n_seeds, train_acc.shape[1] - 1)
    if curves["validation"]:
        at = np.array(curves["validation"]).T.argmax(1)
    seeds = np.arange(n_seeds)
    return {"train_accuracy": train_acc, "test_accuracy": test_acc,
            "final_train": train_acc[seeds, at], "final_test": test_acc[seeds, at],
            "final_test_correct": correct[at, seeds].astype(np.int8)}


# --------------------------------------------------------------------------------------------
# Double descent: minimum-norm least squares on random ReLU features (Belkin et al. 2019).


def double_descent(config: FittingConfig, ctx: RunContext) -> dict:
    """Per seed and p: φ(x) = relu(xV)/√p, V ~ N(0, 1); w = pinv(Φ)·Y on one-hot targets; the
    test MSE and test error. The interpolation threshold is p = n."""
    data = digits(ctx.generator("digits"), ctx.device)
    chosen = subsets(config.features_n, ctx, "double descent")
    generator = ctx.generator("features")
    mse = np.zeros((ctx.n_seeds, len(config.features)))
    error = np.zeros_like(mse)
    targets = torch.nn.functional.one_hot(data["train_y"], 10).double()
    for j, p in enumerate(config.features):
        weights = torch.randn(ctx.n_seeds, 64, p, generator=generator, device=ctx.device,
                              dtype=torch.float64)
        features = torch.relu(data["train_x"][chosen].double() @ weights) / math.sqrt(p)
        test_features = torch.relu(data["test_x"].double() @ weights) / math.sqrt(p)
        solution = torch.linalg.pinv(features) @ targets[chosen]
        predicted = test_features @ solution
        truth = torch.nn.functional.one_hot(data["test_y"], 10).double()
        mse[:, j] = (predicted - truth).square().sum(-1).mean(-1).cpu().numpy()
        error[:, j] = (predicted.argmax(-1) != data["test_y"]).double().mean(-1).cpu().numpy()
    return {"features": config.features, "n": config.features_n, "test_mse": mse,
            "test_error": error}


def run(config: FittingConfig, ctx: RunContext) -> dict:
    def sweep(key, settings, held=0):
        return [ctx.part(f"{key}: n={n}, width={w}, {'+'.join(r) or 'plain'}",
                         lambda n=n, w=w, r=r: train(config, n, w, r, ctx, key, held))
                for n, w, r in settings]
    held = round(config.validation_fraction * config.remedy_n)
    return {
        "width_sweep": sweep("width", [(config.width_n, w, ()) for w in config.widths]),
        "size_sweep": sweep("size", [(n, config.size_width, ()) for n in config.sizes]),
        "remedies": sweep("remedies", [(config.remedy_n, config.remedy_width, r) for r in
                                       [(), *((r,) for r in REMEDIES), REMEDIES]], held),
        "double_descent": ctx.part("double descent", lambda: double_descent(config, ctx)),
    }


# --------------------------------------------------------------------------------------------
# Claims: effect sizes with 95% intervals, paired by seed, the test images counted as a sample.


def paired_gain(treated, plain, resamples: int = 4_000, seed: int = 0) -> Interval:
    """The mean over seeds and test images of treated − plain correctness (seeds, images), with
    a two-way percentile bootstrap that resamples seeds and test images independently: the
    test set is a sample too, so a gain of one image per seed is not an interval of width 0."""
    difference = np.asarray(treated, dtype=float) - np.asarray(plain, dtype=float)
    n_seeds, n_images = difference.shape
    rng = np.random.default_rng(seed)
    seed_weights = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), resamples)
    image_weights = rng.multinomial(n_images, np.full(n_images, 1 / n_images), resamples)
    replicates = np.einsum("bs,si,bi->b", seed_weights, difference, image_weights) / (
        n_seeds * n_images)
    low, high = np.quantile(replicates, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    estimate = float(difference.mean())
    return Interval(estimate, min(float(low), estimate), max(float(high), estimate), CONFIDENCE,
                    n_seeds, "two-way bootstrap (seeds × test images)")


def gap(run: dict) -> np.ndarray:
    return np.asarray(run["final_train"]) - np.asarray(run["final_test"])


def check_capacity(config: FittingConfig, result: dict) -> Check:
    """The best narrower width is chosen on the even test images, judged on the odd ones."""
    correct = [np.asarray(r["final_test_correct"]) for r in result["width_sweep"]]
    best = int(np.argmax([c[:, 0::2].mean() for c in correct[:-1]]))
    drop = paired_gain(correct[best][:, 1::2], correct[-1][:, 1::2])
    detail = (f"test accuracy by width {config.widths}: "
              + ", ".join(f"{c.mean():.3f}" for c in correct)
              + f"; the best narrower width ({config.widths[best]}, chosen on half the test "
              f"images) beats the widest on the other half by {drop.estimate:+.3f}; train "
              f"accuracy at the widest {np.mean(result['width_sweep'][-1]['final_train']):.3f}")
    return Check.at_least(drop, ABOVE_ZERO, detail)


def check_data(config: FittingConfig, result: dict) -> Check:
    smallest, largest = gap(result["size_sweep"][0]), gap(result["size_sweep"][-1])
    return Check.at_least(mean_interval(smallest - largest), ABOVE_ZERO,
                          f"gap (train − test accuracy) at n={config.sizes[0]}: "
                          f"{smallest.mean():.3f}, at n={config.sizes[-1]}: {largest.mean():.3f}"
                          "; the shrink, per seed")


def remedy_claim(remedy: str | None) -> Claim:
    label = remedy or "all remedies together"

    def check(config: FittingConfig, result: dict) -> Check:
        runs = {tuple(r["remedies"]): r for r in result["remedies"]}
        plain = runs[()]
        treated = runs[(remedy,) if remedy else REMEDIES]
        gain = paired_gain(treated["final_test_correct"], plain["final_test_correct"])
        closed = mean_interval(gap(plain) - gap(treated))
        best_along = np.asarray(plain["test_accuracy"]).max(1).mean()
        return Check.at_least(gain, ABOVE_ZERO,
                              f"test accuracy {np.mean(treated['final_test']):.3f} vs "
                              f"{np.mean(plain['final_test']):.3f}; gap narrowed by "
                              f"{closed.estimate:+.3f} ({closed}); the plain net's best test "
                              f"accuracy along its run {best_along:.3f} (context, not judged); "
                              f"both trained on {plain['trained_on']} of {config.remedy_n} "
                              "images; the gain")
    verb = "improves" if remedy else "improve"
    return Claim(f"{label} {verb} test accuracy", f"folklore: {label} reduces overfitting and "
                 "raises test accuracy (Goodfellow et al. 2016, ch. 7)",
                 "the gain's interval lies above 0", check,
                 test="paired test-accuracy gain of the remedy over the plain net (same subset, "
                 "init and training images per seed), mean over seeds and test images; 95% "
                 "two-way bootstrap over seeds and test images; holds when it lies above 0, fails "
                 "when below, inconclusive when it straddles 0",
                 id=f"{slug(label)}-improves-test-accuracy")


def peak_height(config: FittingConfig, result: dict) -> np.ndarray:
    """Per seed: log10 of the largest test MSE for n/2 ≤ p ≤ 2n over the larger of the MSEs at
    the sweep's two ends (> 0: a peak near the threshold, lower on both sides)."""
    descent = result["double_descent"]
    mse = np.asarray(descent["test_mse"], dtype=float)
    features, n = np.asarray(descent["features"]), descent["n"]
    window = (features >= n / 2) & (features <= 2 * n)
    if not window.any() or window[0] or window[-1]:
        return np.array([])
    return np.log10(mse[:, window].max(1) / np.maximum(mse[:, 0], mse[:, -1]))


def check_double_descent(config: FittingConfig, result: dict) -> Check:
    descent = result["double_descent"]
    heights = peak_height(config, result)
    if not len(heights):
        return Check.not_checked(None, "needs features below n/2, within [n/2, 2n] and above 2n")
    mse = np.median(np.asarray(descent["test_mse"]), axis=0)
    features = np.asarray(descent["features"])
    peaks = features[np.asarray(descent["test_mse"]).argmax(1)]
    return Check.at_least(mean_interval(heights), ABOVE_ZERO,
                          f"median test MSE {mse[0]:.3g} at p = {features[0]}, "
                          f"{mse.max():.3g} at its peak, {mse[-1]:.3g} at p = {features[-1]} "
                          f"(n = {descent['n']}); each seed's peak at p = "
                          f"{', '.join(map(str, peaks))}; log10 peak / larger end")


CLAIMS = (
    Claim("too much capacity overfits", "folklore (the classical U-curve): past some width, "
          "test accuracy falls as capacity grows", "the drop's interval lies above 0",
          check_capacity,
          test="test accuracy of the best narrower width (chosen on the even test images) "
          "minus the widest's, on the odd test images, paired by seed; 95% two-way bootstrap "
          "over seeds and images; holds when it lies above 0, fails when below",
          id="too-much-capacity-overfits"),
    Claim("more data closes the gap", "more training data reduces overfitting",
          "the shrink's interval lies above 0", check_data,
          test="per seed, gap (train − test accuracy) at the smallest n minus at the largest; "
          "95% t-interval over seeds; holds when it lies above 0, fails when below",
          id="more-data-closes-the-gap"),
    *(remedy_claim(remedy) for remedy in (*REMEDIES, None)),
    Claim("test error peaks at the interpolation threshold (double descent)",
          "test error peaks at the interpolation threshold p ≈ n and falls "
          "again beyond it (Belkin et al. 2019, Figure 2)", "the peak height's interval lies "
          "above 0", check_double_descent,
          test="per seed, log10 of the largest test MSE for n/2 ≤ p ≤ 2n over the larger MSE "
          "at the sweep's two ends; 95% t-interval over seeds; holds when it lies above 0 "
          "(a peak near p = n, lower on both sides), fails when below", id="double-descent"),
)


def figures(config: FittingConfig, result: dict) -> dict:
    fig1, (ax_width, ax_size) = new_figure(ncols=2)
    for ax, runs, xs, xlabel in ((ax_width, result["width_sweep"], config.widths,
                                  f"hidden width (n = {config.width_n})"),
                                 (ax_size, result["size_sweep"], config.sizes,
                                  f"training images (width {config.size_width})")):
        for part, colour in (("final_train", "tab:blue"), ("final_test", "tab:red")):
            band(ax, xs, np.array([r[part] for r in runs]).T, part.split("_")[1], colour)
        ax.set(xlabel=xlabel, ylabel="accuracy")
        log_ticks(ax, xs)
        ax.legend()
    ax_width.set_title("Capacity: under- and over-fitting")
    ax_size.set_title("Training-set size")

    fig2, ax = new_figure(width=6.4)
    plain = result["remedies"][0]
    labels, means, halves, gaps = [], [], [], []
    for run in result["remedies"]:
        labels.append(" + ".join(run["remedies"]) if len(run["remedies"]) < 2 else "all")
        found = mean_interval(run["final_test"])
        means.append(found.estimate)
        halves.append(found.high - found.estimate)
        gaps.append(np.mean(gap(run)))
    labels[0] = "plain"
    positions = np.arange(len(labels))
    ax.bar(positions, means, yerr=halves, color="tab:red", alpha=0.7, label="test accuracy")
    ax.plot(positions, np.array(means) + np.array(gaps), "o", color="tab:blue",
            label="train accuracy")
    ax.axhline(np.mean(plain["final_test"]), color="black", ls=":", lw=1)
    ax.set_xticks(positions, labels, rotation=25, ha="right")
    ax.set(ylim=(max(0, min(means) - 0.1), 1.01), ylabel="accuracy",
           title=f"Remedies, {plain['trained_on']} training images (95% CI over seeds)")
    ax.legend(fontsize=8, loc="lower left")

    descent = result["double_descent"]
    fig3, ax = new_figure()
    band(ax, descent["features"], descent["test_mse"], "test MSE", "tab:purple")
    ax.axvline(descent["n"], color="black", ls=":", lw=1)
    ax.set(yscale="log", xlabel="random ReLU features p", ylabel="test MSE (one-hot)",
           title=f"Double descent: min-norm least squares, n = {descent['n']}")
    log_ticks(ax, descent["features"][::2])
    return {"capacity_and_data": fig1, "remedies": fig2, "double_descent": fig3}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "capacity_and_data": ("Train (blue) and test (red) accuracy against hidden width (left) and "
                          "against the number of training images (right): the gap between them is "
                          "the overfitting."),
    "remedies": ("Test accuracy (bars, 95% interval over seeds) and train accuracy (dots) of the "
                 "plain net, each remedy alone and all together; dotted: the plain net's test "
                 "accuracy, which a remedy must beat."),
    "double_descent": ("Test MSE of min-norm least squares on random ReLU features against their "
                       "number p (dotted: n training points): the error peaks at the interpolation "
                       "threshold p ≈ n and falls again beyond it (Belkin et al. 2019)."),
}


def work(config: FittingConfig, seeds: int) -> float:
    """Cost model units: µs (fitted at default): every run's SGD steps, then the pinvs."""
    runs = ([(config.width_n, w) for w in config.widths]
            + [(n, config.size_width) for n in config.sizes]
            + [(config.remedy_n, config.remedy_width)] * (len(REMEDIES) + 2))
    step = sum(500 + seeds * (3 * config.batch_size + (n + 360) / config.eval_every)
               * (74 * w + w * w) / 2e4 for n, w in runs)  # + the train and test images evaluated
    pinv = sum(config.features_n * p * min(config.features_n, p) for p in config.features)
    return config.steps * step + seeds * pinv / 2e3


EXPERIMENT = Experiment(
    name="fitting",
    section="Goodfellow et al. 2016 ch. 5, 7; Belkin et al. 2019",
    title="Under- and over-fitting, the remedies measured, and double descent",
    version=2,
    config_class=FittingConfig,
    scales={
        "quick": {"widths": [4, 64, 256], "sizes": [50, 400], "steps": 600, "eval_every": 100,
                  "features": [20, 100, 200, 400, 1_600]},
        "default": {"widths": [4, 16, 64, 256, 1024], "sizes": [50, 200, 800],
                    "steps": 1_500},
        "paper": {},
    },
    seeds={"quick": 3, "default": 5, "paper": 10},
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
