"""Gradient flow through depth: vanishing gradients, and the remedies that let deep nets train.

Glorot & Bengio 2010 (per-layer gradients, saturating sigmoids, normalised init); He et al.
2015 (N(0, 2/n) for ReLU); Ioffe & Szegedy 2015 (batch norm); He et al. 2016 (residual
connections). MLPs on scikit-learn's digits, 2 to 64 layers deep:

- at initialisation, the norm of each layer's weight gradient, and the ratio first/last layer
  against depth, for sigmoid, tanh and ReLU under five inits, plain, with batch norm, residual,
  and both. With sigmoid and a naive init the ratio decays exponentially in depth; He init
  keeps ReLU within 10x;
- in training (SGD with momentum, same budget for all), the steps to a target training accuracy
  against depth, and the fraction of seeds that reach it at all.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from gradfail.data.digits import digits
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext, known_name
from gradfail.maths.statistics import fraction_difference_interval, mean_interval
from gradfail.nets.deep import ACTIVATIONS, INITS, DeepMLP, expand_models
from gradfail.plotting import band, log_ticks, new_figure, new_grid

ActivationName = known_name("activation", ACTIVATIONS)
InitName = known_name("init", INITS)
ARCHITECTURES = {"plain": (False, False), "batch norm": (True, False),
                 "residual": (False, True), "residual + batch norm": (True, True)}
ABOVE_ZERO = math.ulp(0.0)  # "trains where plain ones stall": strictly more, not as many


class Net(BaseModel):
    """One trained network family: activation, init, and the remedies it uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    activation: ActivationName
    init: InitName
    architecture: known_name("architecture", ARCHITECTURES) = "plain"

    @property
    def label(self) -> str:
        extra = "" if self.architecture == "plain" else f", {self.architecture}"
        return f"{self.activation} · {self.init}{extra}"


TRAINED = [Net(activation="sigmoid", init="normal"), Net(activation="sigmoid", init="glorot"),
           Net(activation="tanh", init="glorot"), Net(activation="relu", init="he"),
           Net(activation="sigmoid", init="glorot", architecture="residual + batch norm"),
           Net(activation="relu", init="he", architecture="residual + batch norm")]


class DepthConfig(Config):
    """Depths (2..64) and width are ours (the planned widths were 64–500)."""

    width: PositiveInt = Field(128, description="hidden units per layer")
    init_depths: list[PositiveInt] = Field([2, 4, 8, 16, 32, 64], min_length=2,
                                           description="depths (weight layers) at init")
    activations: list[ActivationName] = Field(["sigmoid", "tanh", "relu"], min_length=1)
    inits: list[InitName] = Field(list(INITS), min_length=1)
    init_batch: PositiveInt = Field(256, description="digits examples in the gradient at init")
    train_depths: list[PositiveInt] = Field([2, 4, 8, 16, 32, 64], min_length=1)
    nets: list[Net] = Field(TRAINED, min_length=1, description="the trained families")
    steps: PositiveInt = Field(5_000, description="SGD steps per run (the common budget)")
    batch_size: PositiveInt = Field(64)
    lr: PositiveFloat = Field(0.01, description="SGD learning rate, momentum 0.9")
    target_accuracy: float = Field(0.9, gt=0, le=1, description="training accuracy to reach")
    eval_every: PositiveInt = Field(25, description="steps between training-set accuracies")


# --------------------------------------------------------------------------------------------
# At initialisation: every layer's weight-gradient norm (Glorot & Bengio 2010, Figure 7).


def gradient_norms_at_init(config: DepthConfig, architecture: str, ctx: RunContext) -> dict:
    """{activation: {init: (seeds, depths, depth_max) norms, NaN-padded past each depth}}.

    Float64, so that gradients that vanish to 1e-100 are still measured, not flushed to 0.
    """
    batch_norm, residual = ARCHITECTURES[architecture]
    data = digits(ctx.generator("digits"), ctx.device)
    pick = torch.randperm(len(data["train_y"]), generator=torch.Generator().manual_seed(
        ctx.seed))[: config.init_batch]
    x = expand_models(data["train_x"][pick].double(), ctx.n_seeds)
    y = data["train_y"][pick].expand(ctx.n_seeds, -1)
    longest = max(config.init_depths)
    out: dict = {}
    with ctx.track(f"depth: gradients at init, {architecture}",
                   len(config.activations) * len(config.inits)) as advance:
        for activation in config.activations:
            out[activation] = {}
            for init in config.inits:
                norms = np.full((ctx.n_seeds, len(config.init_depths), longest), np.nan)
                for i, depth in enumerate(config.init_depths):
                    net = DeepMLP(ctx.n_seeds, 64, config.width, depth, 10, activation, init,
                                  ctx.generator("init", activation, init, depth), ctx.device,
                                  batch_norm, residual).double()
                    logits = net(x)
                    torch.nn.functional.cross_entropy(logits.transpose(1, 2), y).backward()
                    norms[:, i, :depth] = net.weight_gradient_norms().cpu().numpy()
                out[activation][init] = norms
                advance(1)
    return out


def first_over_last(norms) -> np.ndarray:
    """(seeds, depths): ‖∂L/∂W_1‖ / ‖∂L/∂W_depth‖ from a NaN-padded (seeds, depths, layers)."""
    norms = np.asarray(norms, dtype=float)
    last = np.array([row[~np.isnan(row)][-1] for row in norms.reshape(-1, norms.shape[-1])])
    with np.errstate(divide="ignore", invalid="ignore"):
        return norms[..., 0] / last.reshape(norms.shape[:2])


def exponential_fit(depths, ratios) -> tuple[float, float]:
    """The slope of ln(ratio) against depth, and the R² of that line, for one seed's ratios
    (depths,) or for the median over seeds of (seeds, depths)."""
    ratios = np.asarray(ratios, dtype=float)
    log_ratio = np.log(np.median(ratios, axis=0) if ratios.ndim > 1 else ratios)
    keep = np.isfinite(log_ratio)
    depths = np.asarray(depths, dtype=float)[keep]
    slope, intercept = np.polyfit(depths, log_ratio[keep], 1)
    residual = log_ratio[keep] - (slope * depths + intercept)
    total = ((log_ratio[keep] - log_ratio[keep].mean()) ** 2).sum()
    return float(slope), float(1 - (residual**2).sum() / total) if total > 0 else 0.0


# --------------------------------------------------------------------------------------------
# In training: steps to the target accuracy, one run per (family, depth), seeds batched.


def train(config: DepthConfig, net_spec: Net, depth: int, ctx: RunContext) -> dict:
    """SGD + momentum 0.9 on digits until every seed reaches the target or the budget ends.

    A seed whose loss turns NaN has diverged; it counts as not reaching the target (the seeds
    are independent models, so it does not touch the others). Batch-norm nets are evaluated
    with the statistics of the evaluated set.
    """
    data = digits(ctx.generator("digits"), ctx.device)
    batch_norm, residual = ARCHITECTURES[net_spec.architecture]
    net = DeepMLP(ctx.n_seeds, 64, config.width, depth, 10, net_spec.activation, net_spec.init,
                  ctx.generator("train init", net_spec.label, depth), ctx.device,
                  batch_norm, residual)
    optimiser = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=0.9)
    sampler = ctx.generator("batches", net_spec.label, depth)
    train_x = expand_models(data["train_x"], ctx.n_seeds)
    n_train = len(data["train_y"])
    reached = np.full(ctx.n_seeds, np.nan)
    steps, curve, losses = [], [], []

    def accuracy(x, y) -> np.ndarray:
        with torch.no_grad():
            return (net(expand_models(x, ctx.n_seeds)).argmax(-1) == y).float().mean(1).cpu(
                ).numpy()

    with ctx.track(f"depth: {net_spec.label}, {depth} layers", config.steps) as advance:
        for step in range(config.steps + 1):
            if step % config.eval_every == 0 or step == config.steps:
                with torch.no_grad():
                    logits = net(train_x)
                    loss = torch.nn.functional.cross_entropy(
                        logits.transpose(1, 2), data["train_y"].expand(ctx.n_seeds, -1),
                        reduction="none").mean(1)
                correct = (logits.argmax(-1) == data["train_y"]).float().mean(1).cpu().numpy()
                steps.append(step)
                curve.append(correct)
                losses.append(loss.cpu().numpy())
                reached[np.isnan(reached) & (correct >= config.target_accuracy)] = step
                stuck = ~np.isfinite(losses[-1])
                if (~np.isnan(reached) | stuck).all() or step == config.steps:
                    break
            pick = torch.randint(n_train, (ctx.n_seeds, config.batch_size), generator=sampler,
                                 device=ctx.device)
            logits = net(data["train_x"][pick])
            loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2),
                                                     data["train_y"][pick], reduction="none")
            optimiser.zero_grad(set_to_none=True)
            loss.mean(1).sum().backward()
            optimiser.step()
            advance(1)
    return {"net": net_spec.label, "depth": depth, "steps": steps,
            "train_accuracy": np.array(curve).T, "train_loss": np.array(losses).T,
            "steps_to_target": reached, "ran": steps[-1],
            "test_accuracy": accuracy(data["test_x"], data["test_y"])}


def run(config: DepthConfig, ctx: RunContext) -> dict:
    at_init = {arch: ctx.part(f"gradients at init, {arch}",
                              lambda arch=arch: gradient_norms_at_init(config, arch, ctx))
               for arch in ARCHITECTURES}
    training = [ctx.part(f"train {net.label}, depth {depth}",
                         lambda net=net, depth=depth: train(config, net, depth, ctx))
                for net in config.nets for depth in config.train_depths]
    return {"at_init": at_init, "training": training}


# --------------------------------------------------------------------------------------------
# Claims and figures.


def ratios(config: DepthConfig, result: dict, activation: str, init: str,
           architecture: str = "plain") -> np.ndarray | None:
    by_init = result["at_init"][architecture].get(activation, {})
    return first_over_last(by_init[init]) if init in by_init else None


def check_sigmoid_decay(config: DepthConfig, result: dict) -> Check:
    """Both naive inits: ln(ratio) falls linearly in depth, per seed."""
    found = {init: ratio for init in ("normal", "small")
             if (ratio := ratios(config, result, "sigmoid", init)) is not None}
    if len(found) < 2:
        return Check.not_checked(None, "needs sigmoid with the 'normal' and 'small' inits")
    fits = {init: [exponential_fit(config.init_depths, seed) for seed in ratio]
            for init, ratio in found.items()}
    slowest = np.max([[slope for slope, _ in seeds] for seeds in fits.values()], axis=0)
    detail = "; ".join(f"{init}: ratio × {np.exp(np.median([f[0] for f in seeds])):.3g} per "
                       f"layer, R² of ln(ratio) on depth ≥ {min(f[1] for f in seeds):.3f}"
                       for init, seeds in fits.items())
    return Check.at_most(mean_interval(slowest), -ABOVE_ZERO,
                         f"{detail}; per seed, the slower decay's ln-slope")


def check_he_relu(config: DepthConfig, result: dict) -> Check:
    relu_he = ratios(config, result, "relu", "he")
    shown = [i for i, depth in enumerate(config.init_depths) if depth <= 32]
    if relu_he is None or max(config.init_depths) < 32:
        return Check.not_checked(None, "needs ReLU with He init at depths up to 32")
    within = relu_he[:, shown]
    spread = np.abs(np.log10(within)).max(1)
    return Check.at_most(mean_interval(spread), 1.0,
                         f"first/last ratios {within.min():.3g}–{within.max():.3g} over depths "
                         f"{[config.init_depths[i] for i in shown]}; per seed, the largest "
                         "|log10 ratio|")


def training_run(result: dict, label: str, depth: int) -> dict | None:
    return next((run for run in result["training"]
                 if run["net"] == label and run["depth"] == depth), None)


def reached(run: dict) -> np.ndarray:
    return ~np.isnan(np.asarray(run["steps_to_target"], dtype=float))


def fraction_reached(run: dict) -> float:
    return float(np.mean(reached(run)))


def check_remedy(config: DepthConfig, result: dict) -> Check:
    remedy = training_run(result, "sigmoid · glorot, residual + batch norm", 32)
    plain = [training_run(result, f"sigmoid · {init}", 32) for init in ("normal", "glorot")]
    if remedy is None or None in plain:
        return Check.not_checked(None, "needs depth 32 runs of sigmoid · glorot with residual + "
                                 "batch norm and of plain sigmoid · normal and · glorot")
    fractions = [fraction_reached(run) for run in (remedy, *plain)]
    best_plain = max(plain, key=fraction_reached)
    return Check.at_least(fraction_difference_interval(reached(remedy), reached(best_plain)),
                          ABOVE_ZERO,
                          f"seeds reaching {config.target_accuracy:.0%} training accuracy within "
                          f"{config.steps:,} steps: residual + BN {fractions[0]:.0%}, plain "
                          f"normal {fractions[1]:.0%}, plain glorot {fractions[2]:.0%}; the "
                          "difference from the better plain net")


CLAIMS = (
    Claim("with sigmoids and naive init, gradients decay exponentially with depth",
          "gradients shrink layer by layer towards "
          "the input with saturating sigmoids (Glorot & Bengio 2010, §4.2–4.3)",
          "the slope's interval lies below 0", check_sigmoid_decay,
          test="per seed, the ln-slope of the first/last gradient-norm ratio against depth for "
          "N(0, 1) and N(0, 0.01²), the larger (slower decay) of the two; 95% t-interval over "
          "seeds; holds when it lies below 0, fails when above; R² of the line beside it",
          id="sigmoid-naive-init-exponential-decay"),
    Claim("He init keeps ReLU gradients flat", "N(0, 2/n) keeps ReLU signals from vanishing or "
          "exploding with depth (He et al. 2015, §2.2)",
          "the spread's interval lies at or below 1 (10×)", check_he_relu,
          test="per seed, the largest |log10(first/last gradient norm)| over depths ≤ 32; 95% "
          "t-interval over seeds; holds at or below 1 (within 10×), fails above",
          id="he-init-keeps-relu-gradients-flat"),
    Claim("residual + batch norm trains at depth 32", "BN and residual connections let deep "
          "nets train where plain ones stall (Ioffe & Szegedy 2015; He et al. 2016)",
          "the difference's interval lies above 0", check_remedy,
          test="at depth 32, the fraction of seeds of sigmoid + residual + BN reaching the "
          "target training accuracy within the common budget minus that of the better of "
          "plain sigmoid · normal and · glorot (the better one: conservative); 95% Newcombe "
          "interval; holds when it lies above 0, fails when below",
          id="residual-batch-norm-trains-at-depth-32"),
)


def gradients_per_layer_figure(config: DepthConfig, result: dict):
    plain = result["at_init"]["plain"]
    deepest = max((d for d in config.init_depths if d <= 32), default=max(config.init_depths))
    index = config.init_depths.index(deepest)
    fig, axes = new_figure(ncols=len(config.activations), width=3.6, height=3.2)
    axes = np.atleast_1d(axes)
    for ax, activation in zip(axes, config.activations, strict=True):
        for init in config.inits:
            norms = np.asarray(plain[activation][init], dtype=float)[:, index, :deepest]
            band(ax, np.arange(1, deepest + 1), norms, init)
        ax.set(yscale="log", title=f"{activation}, {deepest} layers", xlabel="layer (1 = input)")
    axes[0].set_ylabel("‖∂L/∂W_layer‖ at init")
    axes[0].legend(fontsize=8)
    fig.suptitle("Per-layer weight-gradient norms at initialisation (Glorot & Bengio 2010)")
    return fig


def gradient_ratio_figure(config: DepthConfig, result: dict):
    fig, grid = new_grid(len(ARCHITECTURES), len(config.activations), width=3.4, height=2.6)
    for row, architecture in zip(grid, ARCHITECTURES, strict=True):
        for ax, activation in zip(row, config.activations, strict=True):
            for init in config.inits:
                band(ax, config.init_depths,
                     ratios(config, result, activation, init, architecture), init)
            ax.axhspan(0.1, 10, color="grey", alpha=0.12, lw=0)
            ax.set(yscale="log", title=f"{activation}, {architecture}")
            log_ticks(ax, config.init_depths)
    grid[0][0].legend(fontsize=7)
    for ax in grid[-1]:
        ax.set_xlabel("depth (weight layers)")
    for row in grid:
        row[0].set_ylabel("first / last gradient norm")
    fig.suptitle("Gradient ratio input layer / output layer against depth (grey: within 10×)")
    return fig


def steps_to_target_figure(config: DepthConfig, result: dict):
    fig, (ax_steps, ax_fraction) = new_figure(ncols=2)
    for net in config.nets:
        runs = [training_run(result, net.label, depth) for depth in config.train_depths]
        reached = np.array([np.asarray(r["steps_to_target"], dtype=float) for r in runs]).T
        median = np.array([np.median(col) if np.mean(~np.isnan(col)) > 0.5 else np.nan
                           for col in reached.T])
        line = ax_steps.plot(config.train_depths, median, "o-", label=net.label)[0]
        ax_fraction.plot(config.train_depths, [fraction_reached(r) for r in runs], "o-",
                         color=line.get_color(), label=net.label)
    ax_steps.set(yscale="log", xlabel="depth", ylabel="median SGD steps",
                 title=f"Steps to {config.target_accuracy:.0%} training accuracy")
    ax_fraction.set(xlabel="depth", ylabel="fraction of seeds", ylim=(-0.05, 1.05),
                    title=f"Seeds that reach it within {config.steps:,} steps")
    for ax in (ax_steps, ax_fraction):
        log_ticks(ax, config.train_depths)
    ax_fraction.legend(fontsize=7)
    return fig


def training_curves_figure(config: DepthConfig, result: dict):
    deepest_trained = max(config.train_depths)
    fig, ax = new_figure(width=6.2)
    for net in config.nets:
        run = training_run(result, net.label, deepest_trained)
        band(ax, run["steps"], run["train_accuracy"], net.label)
    ax.axhline(config.target_accuracy, color="black", ls=":", lw=1)
    ax.set(xlabel="SGD step", ylabel="training accuracy",
           title=f"Training at depth {deepest_trained} (band = seeds)")
    ax.legend(fontsize=7)
    return fig


def figures(config: DepthConfig, result: dict) -> dict:
    return {"gradients_per_layer": gradients_per_layer_figure(config, result),
            "gradient_ratio": gradient_ratio_figure(config, result),
            "steps_to_target": steps_to_target_figure(config, result),
            "training_curves": training_curves_figure(config, result)}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "gradients_per_layer": ("Weight-gradient norm of each layer at initialisation, per activation "
                            "and init: with sigmoids and a naive init the norms shrink towards the "
                            "input (Glorot & Bengio 2010)."),
    "gradient_ratio": ("First over last layer's gradient norm against depth, per activation, "
                       "architecture and init (grey: within 10×): He init keeps ReLU nets in the "
                       "band, naive sigmoid inits fall exponentially out of it."),
    "steps_to_target": ("Median SGD steps to the target training accuracy against depth (left) and "
                        "the fraction of seeds reaching it within the budget (right), per network: "
                        "plain deep nets stall where residual + batch norm still trains."),
    "training_curves": ("Training accuracy over SGD steps at the largest trained depth, per "
                        "network (band = seeds; dotted: the target)."),
}


def work(config: DepthConfig, seeds: int) -> float:
    """Cost model units: µs (fitted at default): layer-steps, training (40% run) and at init."""
    def layer(samples: float) -> float:  # one layer's µs for `samples` passes per seed
        return 80 + seeds * samples * config.width**2 / 3e4
    samples = 3 * config.batch_size + 1_438 / config.eval_every  # trained + evaluated digits
    training = 0.4 * len(config.nets) * config.steps * sum(config.train_depths) * layer(samples)
    grids = 1.5 * len(ARCHITECTURES) * len(config.activations) * len(config.inits)  # 1.5: BN
    return training + grids * sum(config.init_depths) * layer(6 * config.init_batch)  # float64


EXPERIMENT = Experiment(
    name="depth",
    section="Glorot & Bengio 2010; He et al. 2015, 2016",
    title="Gradient flow through depth: vanishing gradients and their remedies",
    version=2,
    config_class=DepthConfig,
    scales={
        "quick": {"width": 32, "init_depths": [2, 8, 32], "init_batch": 128,
                  "train_depths": [4, 32], "steps": 600, "eval_every": 50,
                  "nets": [n.model_dump() for n in TRAINED[:2] + TRAINED[4:5]]},
        "default": {"width": 64, "train_depths": [2, 4, 8, 16, 32], "steps": 2_000},
        "paper": {},
    },
    seeds={"quick": 3, "default": 4, "paper": 8},
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
