"""Under- and over-fitting on digits, the remedies measured one by one, and double descent.

The folklore (e.g. Goodfellow, Bengio & Courville 2016, §5.2 and ch. 7): too little capacity
underfits, too much overfits, more data closes the gap, and L2, dropout (Srivastava et al.
2014), early stopping, data augmentation and learning-rate decay each buy generalisation.
Measured here, as effect sizes with 95% confidence intervals over seeds, on scikit-learn's
digits with a ReLU MLP trained by SGD with momentum:

- train and test accuracy over hidden width at a fixed training-set size, and over the
  training-set size at a fixed width;
- at n = 200 training images, each remedy alone and all together against the plain net: the
  change in test accuracy and in the generalisation gap (train − test accuracy), paired by seed
  (same subset, same init);
- double descent (Belkin et al. 2019): minimum-norm least squares on random ReLU features,
  test error against the number of features p, peaking where p reaches n.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt, field_validator
from scipy import stats

from gradfail.data.digits import digits
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.nets.batched import mlp_forward, mlp_parameters
from gradfail.nets.deep import expand_models
from gradfail.plotting import band, log_ticks, new_figure

REMEDIES = ("L2", "dropout", "early stopping", "augmentation", "lr decay")


class FittingConfig(Config):
    """Sizes are ours: digits has 1,437 training images after the 20% test split."""

    widths: list[PositiveInt] = Field([2, 4, 8, 16, 32, 64, 128, 256, 512], min_length=2)
    width_n: PositiveInt = Field(200, description="training images in the width sweep")
    sizes: list[PositiveInt] = Field([25, 50, 100, 200, 400, 800, 1_400], min_length=2)
    size_width: PositiveInt = Field(256, description="hidden width in the size sweep")
    remedy_n: PositiveInt = Field(200, description="training images for the remedies")
    remedy_width: PositiveInt = Field(256)
    steps: PositiveInt = Field(3_000, description="SGD steps of every run")
    batch_size: PositiveInt = Field(32)
    lr: PositiveFloat = Field(0.01, description="SGD learning rate, momentum 0.9")
    weight_decay: PositiveFloat = Field(1e-3, description="the L2 remedy's λ")
    dropout: float = Field(0.5, gt=0, lt=1, description="the dropout remedy's drop rate")
    validation_fraction: float = Field(0.2, gt=0, lt=1, description="held out for early "
                                       "stopping")
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
          ctx: RunContext, key: str) -> dict:
    """Train/test accuracy curves per seed for a two-hidden-layer ReLU MLP (64-w-w-10).

    Early stopping trains on (1 − validation_fraction)·n images and reports the test
    accuracy at the step of best validation accuracy."""
    data = digits(ctx.generator("digits"), ctx.device)
    chosen = subsets(n, ctx, key)
    held = round(config.validation_fraction * n) if "early stopping" in remedies else 0
    train_index, valid_index = chosen[:, held:], chosen[:, :held]
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

    def accuracy(x, y):
        with torch.no_grad():
            return (forward(x, False).argmax(-1) == y).float().mean(1).cpu().numpy()

    test_x = expand_models(data["test_x"], ctx.n_seeds)
    curves = {"train": [], "test": [], "validation": []}
    steps = []
    for step in range(config.steps + 1):
        if step % config.eval_every == 0 or step == config.steps:
            steps.append(step)
            curves["train"].append(accuracy(train_x, train_y))
            curves["test"].append(accuracy(test_x, data["test_y"]))
            if held:
                curves["validation"].append(accuracy(data["train_x"][valid_index],
                                                     data["train_y"][valid_index]))
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
    return {"n": n, "width": width, "remedies": list(remedies), "steps": steps,
            **final_accuracies(curves, ctx.n_seeds)}


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
    validation set (early stopping), at each seed's best validation step."""
    train_acc, test_acc = np.array(curves["train"]).T, np.array(curves["test"]).T
    at = np.full(n_seeds, train_acc.shape[1] - 1)
    if curves["validation"]:
        at = np.array(curves["validation"]).T.argmax(1)
    seeds = np.arange(n_seeds)
    return {"train_accuracy": train_acc, "test_accuracy": test_acc,
            "final_train": train_acc[seeds, at], "final_test": test_acc[seeds, at]}


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
    def sweep(key, settings):
        return [ctx.part(f"{key}: n={n}, width={w}, {'+'.join(r) or 'plain'}",
                         lambda n=n, w=w, r=r: train(config, n, w, r, ctx, key))
                for n, w, r in settings]
    return {
        "width_sweep": sweep("width", [(config.width_n, w, ()) for w in config.widths]),
        "size_sweep": sweep("size", [(n, config.size_width, ()) for n in config.sizes]),
        "remedies": sweep("remedies", [(config.remedy_n, config.remedy_width, r) for r in
                                       [(), *((r,) for r in REMEDIES), REMEDIES]]),
        "double_descent": ctx.part("double descent", lambda: double_descent(config, ctx)),
    }


# --------------------------------------------------------------------------------------------
# Claims: effect sizes with 95% confidence intervals over seeds (paired where paired).


def interval(values) -> tuple[float, float]:
    """Mean and 95% t-interval half-width."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), math.inf
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(half)


def gap(run: dict) -> np.ndarray:
    return np.asarray(run["final_train"]) - np.asarray(run["final_test"])


def check_capacity(config: FittingConfig, result: dict) -> Check:
    tests = [np.asarray(r["final_test"]) for r in result["width_sweep"]]
    best = int(np.argmax([t.mean() for t in tests]))
    drop, half = interval(tests[best] - tests[-1])
    detail = (f"test accuracy by width {config.widths}: "
              + ", ".join(f"{t.mean():.3f}" for t in tests)
              + f"; the widest is {drop:+.3f} ± {half:.3f} below the best (width "
                f"{config.widths[best]}); train accuracy at the widest "
              f"{np.mean(result['width_sweep'][-1]['final_train']):.3f}")
    return Check.judge(drop - half > 0, drop, detail)


def check_data(config: FittingConfig, result: dict) -> Check:
    smallest, largest = gap(result["size_sweep"][0]), gap(result["size_sweep"][-1])
    shrink, half = interval(smallest - largest)
    return Check.judge(shrink - half > 0, shrink,
                       f"gap (train − test accuracy) at n={config.sizes[0]}: "
                       f"{smallest.mean():.3f}, at n={config.sizes[-1]}: {largest.mean():.3f}; "
                       f"shrinks by {shrink:.3f} ± {half:.3f}")


def remedy_claim(remedy: str | None) -> Claim:
    label = remedy or "all remedies together"

    def check(config: FittingConfig, result: dict) -> Check:
        runs = {tuple(r["remedies"]): r for r in result["remedies"]}
        plain = runs[()]
        treated = runs[(remedy,) if remedy else REMEDIES]
        gain, half = interval(np.asarray(treated["final_test"]) - np.asarray(plain["final_test"]))
        closed, closed_half = interval(gap(plain) - gap(treated))
        return Check.judge(gain - half > 0, gain,
                           f"test accuracy {np.mean(treated['final_test']):.3f} vs "
                           f"{np.mean(plain['final_test']):.3f}: {gain:+.3f} ± {half:.3f}; gap "
                           f"narrowed by {closed:+.3f} ± {closed_half:.3f} (n = {config.remedy_n})")
    return Claim(f"{label} improves test accuracy", f"folklore: {label} reduces overfitting and "
                 "raises test accuracy (Goodfellow et al. 2016, ch. 7)",
                 "paired 95% CI of the test-accuracy change over seeds lies above 0", check)


def check_double_descent(config: FittingConfig, result: dict) -> Check:
    descent = result["double_descent"]
    mse = np.median(np.asarray(descent["test_mse"]), axis=0)
    features, n = np.asarray(descent["features"]), descent["n"]
    peak = int(np.argmax(mse))
    holds = n / 2 <= features[peak] <= 2 * n and mse[-1] < mse[peak] and mse[0] < mse[peak]
    return Check.judge(bool(holds), float(features[peak] / n),
                       f"median test MSE peaks at p = {features[peak]} (n = {n}): "
                       f"{mse[peak]:.3g}, against {mse[0]:.3g} at p = {features[0]} and "
                       f"{mse[-1]:.3g} at p = {features[-1]}")


CLAIMS = (
    Claim("too much capacity overfits", "folklore (the classical U-curve): past some width, "
          "test accuracy falls as capacity grows", "widest net's test accuracy below the best "
          "width's, paired 95% CI above 0", check_capacity),
    Claim("more data closes the gap", "more training data reduces overfitting",
          "gap at the largest n below the gap at the smallest, 95% CI above 0", check_data),
    *(remedy_claim(remedy) for remedy in (*REMEDIES, None)),
    Claim("double descent", "test error peaks at the interpolation threshold p ≈ n and falls "
          "again beyond it (Belkin et al. 2019, Figure 2)", "median test MSE peaks within "
          "n/2 ≤ p ≤ 2n and is lower at both ends of the sweep", check_double_descent),
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
        mean, half = interval(np.asarray(run["final_test"]))
        means.append(mean)
        halves.append(half)
        gaps.append(np.mean(gap(run)))
    labels[0] = "plain"
    positions = np.arange(len(labels))
    ax.bar(positions, means, yerr=halves, color="tab:red", alpha=0.7, label="test accuracy")
    ax.plot(positions, np.array(means) + np.array(gaps), "o", color="tab:blue",
            label="train accuracy")
    ax.axhline(np.mean(plain["final_test"]), color="black", ls=":", lw=1)
    ax.set_xticks(positions, labels, rotation=25, ha="right")
    ax.set(ylim=(max(0, min(means) - 0.1), 1.01), ylabel="accuracy",
           title=f"Remedies at n = {config.remedy_n} (95% CI over seeds)")
    ax.legend(fontsize=8, loc="lower left")

    descent = result["double_descent"]
    fig3, ax = new_figure()
    band(ax, descent["features"], descent["test_mse"], "test MSE", "tab:purple")
    ax.axvline(descent["n"], color="black", ls=":", lw=1)
    ax.set(yscale="log", xlabel="random ReLU features p", ylabel="test MSE (one-hot)",
           title=f"Double descent: min-norm least squares, n = {descent['n']}")
    log_ticks(ax, descent["features"][::2])
    return {"capacity_and_data": fig1, "remedies": fig2, "double_descent": fig3}


EXPERIMENT = Experiment(
    name="fitting",
    section="Goodfellow et al. 2016 ch. 5, 7; Belkin et al. 2019",
    title="Under- and over-fitting, the remedies measured, and double descent",
    version=1,
    config_class=FittingConfig,
    scales={
        "quick": {"widths": [4, 64, 256], "sizes": [50, 400], "steps": 600, "eval_every": 100,
                  "features": [20, 100, 200, 400, 1_600]},
        "default": {"widths": [4, 16, 64, 256, 1024], "sizes": [50, 200, 800],
                    "steps": 1_500},
        "paper": {},
    },
    seeds={"quick": 3, "default": 5, "paper": 10},
    run=run,
    figures=figures,
    claims=CLAIMS,
)
