"""The optimality gap: gradient descent and Adam against the certified global optimum of tiny
ReLU networks.

After training a deep net "you do not know whether this is the best model your configuration
can reach" (the notes). On tiny networks the question has an answer: a MILP certifies the
global optimum of a one-hidden-layer ReLU net of width H with weights in a box (its binaries
select the activation pattern, after Arora et al. 2018), and many random restarts of gradient
descent and Adam are measured against it. A restart succeeds when its normalised gap
g = (L − L*)/(L₀ − L*) is at most the tolerance, L₀ being the best constant predictor's loss.
The fraction of restarts that succeed is measured at the certified width, then as the student
grows wider (over-parameterisation) or deeper (at the certified width) against the same
width-H optimum, and as the data set grows. Instances: a realizable 2-unit ReLU teacher (L1
loss), the same teacher with noise (L1), noisy XOR clusters and random labels (hinge loss), all
in 2-D. The hypotheses gradfail set out to test: restarts at width H succeed only sometimes,
4–8× width closes the gap, Adam vs GD matters less than width, and
success falls with N.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt

from gradfail.exact.relu import MAX_RELU_WIDTH, certify_relu
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext, known_name
from gradfail.maths.statistics import CONFIDENCE, Interval, bootstrap_interval, mean_interval
from gradfail.nets.batched import hinge_loss, mlp_forward, mlp_parameters
from gradfail.plotting import fractions, log_ticks, new_grid

KINDS = {
    "teacher": "l1", "noisy teacher": "l1", "xor": "hinge", "random labels": "hinge",
}
OPTIMISERS = ("gd", "adam")


class GapConfig(Config):
    """Sizes are ours, within what HiGHS certifies in seconds here (gradfail's measurements)."""

    kinds: list[known_name("instance kind", KINDS)] = Field(list(KINDS), min_length=1)
    l1_points: PositiveInt = Field(12, description="points of the L1 (teacher) instances")
    hinge_points: PositiveInt = Field(14, description="points of the hinge instances")
    width: int = Field(2, ge=1, le=MAX_RELU_WIDTH, description="certified width H")
    widths: list[PositiveInt] = Field([2, 4, 8, 16], min_length=2, description="student widths")
    depths: list[PositiveInt] = Field([1, 2, 3], min_length=1, description="student hidden "
                                      "layers, each of the certified width")
    sizes: list[PositiveInt] = Field([8, 16, 32], min_length=2, description="points in the "
                                     "data-size arm (XOR instances)")
    box: PositiveFloat = Field(2.0, description="first-layer weights and biases in [−B, B]")
    restarts: PositiveInt = Field(100, description="random restarts per arm "
                                  "(gradfail's plan: 100-200)")
    steps: PositiveInt = Field(3_000, description="full-batch steps, cosine-decayed to 0")
    gd_lr: PositiveFloat = Field(0.1)
    adam_lr: PositiveFloat = Field(0.01)
    tolerance: PositiveFloat = Field(0.01, description="success: normalised gap g ≤ this")
    noise: PositiveFloat = Field(0.1, description="teacher target noise and XOR cluster spread")
    time_limit: PositiveFloat = Field(60.0, description="seconds to certify one instance")


# --------------------------------------------------------------------------------------------
# Instances, in 2-D.


def instance(kind: str, n: int, config: GapConfig, generator: torch.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """(x, targets) of one kind. The teacher: 2 ReLUs, weights U[−1.5, 1.5], biases
    U[−0.5, 0.5], output weights +1 and −1 (inside the certified box B = 2)."""
    draw = {"generator": generator, "device": generator.device, "dtype": torch.float64}
    if kind == "xor":
        corners = (torch.randint(2, (n, 2), **draw) - 0.5)
        x = corners + config.noise * torch.randn(n, 2, **draw)
        return x.cpu().numpy(), torch.sign(corners.prod(1)).cpu().numpy()
    x = torch.rand(n, 2, **draw) * 2 - 1
    if kind == "random labels":
        return x.cpu().numpy(), (torch.randint(2, (n,), **draw) * 2.0 - 1).cpu().numpy()
    weights = torch.rand(2, 2, **draw) * 3 - 1.5
    biases = torch.rand(2, **draw) - 0.5
    targets = torch.relu(x @ weights.T + biases) @ torch.tensor([1.0, -1.0], dtype=torch.float64,
                                                                device=generator.device)
    if kind == "noisy teacher":
        targets = targets + config.noise * torch.randn(n, **draw)
    return x.cpu().numpy(), targets.cpu().numpy()


def constant_loss(targets: np.ndarray, loss: str) -> float:
    """L₀: the best constant predictor's summed loss (the median for L1; ±1 for the hinge)."""
    if loss == "l1":
        return float(np.abs(targets - np.median(targets)).sum())
    return float(2 * min((targets > 0).sum(), (targets < 0).sum()))


# --------------------------------------------------------------------------------------------
# Restarts, batched: every restart is one model along the leading axis.


def train(x: np.ndarray, targets: np.ndarray, loss: str, optimiser: str, width: int, depth: int,
          config: GapConfig, generator: torch.Generator) -> dict:
    """`restarts` He-initialised ReLU nets (depth hidden layers of `width`) per data set in
    x (sets, N, d), trained full-batch on the mean loss with a cosine-decayed step: their final
    summed losses in float64, (sets, restarts), and for one hidden layer whether each lies in
    the certified box after rescaling the output weights to ±1 (|v_j|·max(‖w_j‖∞, |b_j|) ≤ B)."""
    device, (sets, _, dim) = generator.device, x.shape
    models = sets * config.restarts
    params = [p.double().requires_grad_(True) for p in mlp_parameters(
        models, [dim, *[width] * depth, 1], generator, device)]
    inputs = torch.as_tensor(x, device=device).repeat_interleave(config.restarts, 0)
    truth = torch.as_tensor(targets, device=device).repeat_interleave(config.restarts, 0)
    lr = config.gd_lr if optimiser == "gd" else config.adam_lr
    step = (torch.optim.SGD if optimiser == "gd" else torch.optim.Adam)(params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(step, config.steps)

    def losses():
        out = mlp_forward(params, inputs)[..., 0]
        return (out - truth).abs() if loss == "l1" else hinge_loss(out, truth)

    for _ in range(config.steps):
        step.zero_grad(set_to_none=True)
        losses().mean(1).sum().backward()
        step.step()
        schedule.step()
    with torch.no_grad():
        final = losses().sum(1).reshape(sets, -1)
        in_box = None
        if depth == 1:
            first = torch.maximum(params[0].abs().amax(1), params[1].abs()[:, 0])  # (R, width)
            scaled = params[2][..., 0].abs() * first
            in_box = (scaled <= config.box * (1 + 1e-9)).all(1).reshape(sets, -1).cpu().numpy()
    return {"loss": final.cpu().numpy(), "in_box": in_box}


def arms(config: GapConfig) -> list[tuple[str, int, int]]:
    """(optimiser, width, depth) of every arm run on the base instances."""
    shapes = [(w, 1) for w in config.widths] + [(config.width, d) for d in config.depths if d > 1]
    return [(o, w, d) for o in OPTIMISERS for w, d in dict.fromkeys(shapes)]


def arm_name(optimiser: str, width: int, depth: int) -> str:
    return f"{optimiser} width {width} depth {depth}"


def solve_kind(config: GapConfig, kind: str, n: int, shapes, ctx: RunContext) -> list[dict]:
    """Certify n_seeds instances of a kind, then train every arm from `restarts` random inits
    on each (all instances and restarts of an arm batched as one set of models)."""
    loss = KINDS[kind]
    data = [instance(kind, n, config, ctx.generator("instance", kind, n, seed))
            for seed in range(ctx.n_seeds)]
    rows = [{"kind": kind, "points": n, "seed": seed, "loss": loss,
             "certificate": certify_relu(x, t, config.width, loss, config.box,
                                         config.time_limit).as_dict(),
             "constant": constant_loss(t, loss), "runs": {}}
            for seed, (x, t) in enumerate(data)]
    x, targets = np.stack([x for x, _ in data]), np.stack([t for _, t in data])
    for optimiser, width, depth in shapes:
        generator = ctx.generator("restarts", kind, n, optimiser, width, depth)
        trained = train(x, targets, loss, optimiser, width, depth, config, generator)
        for seed, row in enumerate(rows):
            row["runs"][arm_name(optimiser, width, depth)] = {
                "loss": trained["loss"][seed],
                "in_box": None if trained["in_box"] is None else trained["in_box"][seed]}
    return rows


def run(config: GapConfig, ctx: RunContext) -> dict:
    base = [(kind, config.l1_points if KINDS[kind] == "l1" else config.hinge_points)
            for kind in config.kinds]
    jobs = [("base", kind, n, arms(config)) for kind, n in base]
    jobs += [("size", "xor", n, [(o, config.width, 1) for o in OPTIMISERS])
             for n in config.sizes]
    by_arm = {"base": [], "size": []}
    with ctx.track("certify and restart", len(jobs)) as advance:
        for arm, kind, n, shapes in jobs:
            by_arm[arm] += ctx.part(f"{arm}: {kind}, N={n}", lambda k=kind, n=n, a=shapes:
                                    {"instances": solve_kind(config, k, n, a, ctx)})["instances"]
            advance(1)
    return by_arm


# --------------------------------------------------------------------------------------------
# Success fractions. Restarts of one instance share it, so they are never counted as
# independent: a fraction's interval resamples whole instances (cluster bootstrap), and arms
# are compared by per-instance differences, with an interval over instances.


def gaps(instance: dict, arm: str) -> np.ndarray:
    """Normalised gaps g = (L − L*)/(L₀ − L*) of one arm's restarts (NaN losses → inf)."""
    best = instance["certificate"]["loss"]
    spread = max(instance["constant"] - best, 1e-12)
    losses = np.nan_to_num(np.asarray(instance["runs"][arm]["loss"], dtype=float), nan=np.inf)
    return (losses - best) / spread


def certified(instances: list[dict]) -> list[dict]:
    return [i for i in instances if i["certificate"]["certified"]]


def hits(instance: dict, arms_: list[str], tolerance: float) -> np.ndarray:
    """Whether each restart of the arms (pooled) reached g ≤ tolerance."""
    return np.concatenate([gaps(instance, arm) <= tolerance for arm in arms_])


def rates(instances: list[dict], arms_: list[str], tolerance: float) -> np.ndarray:
    """Per certified instance: the fraction of the arms' restarts (pooled) that succeed."""
    return np.array([hits(i, arms_, tolerance).mean() for i in certified(instances)])


def success(instances: list[dict], arms_: list[str], tolerance: float) -> Interval:
    """P(g ≤ tolerance) over the arms' restarts (pooled), with its 95% cluster bootstrap
    interval: instances resampled whole (NaN when none is certified)."""
    found = [hits(i, arms_, tolerance) for i in certified(instances)]
    if not found:
        return Interval(math.nan, math.nan, math.nan, CONFIDENCE, 0, "none certified")
    return bootstrap_interval(np.concatenate(found), np.mean, clusters=np.repeat(
        np.arange(len(found)), [len(h) for h in found]))


def over_instances(statistic, count: int) -> Interval:
    """The percentile bootstrap of `statistic(instance indices)`, instances resampled."""
    return bootstrap_interval(np.arange(count), lambda picks: statistic(picks.astype(int)))


def shown(interval: Interval) -> tuple[float, float, float]:
    return interval.estimate, interval.low, interval.high


NONE_CERTIFIED = Check.not_checked(None, "no base instance was certified within the time limit")


def width_arms(width: int) -> list[str]:
    """Both optimisers at one width, one hidden layer."""
    return [arm_name(o, width, 1) for o in OPTIMISERS]


def check_single_run(config: GapConfig, result: dict) -> Check:
    if not certified(result["base"]):
        return NONE_CERTIFIED
    arm = [arm_name("gd", config.width, 1)]
    of_kind = {kind: rates([i for i in result["base"] if i["kind"] == kind], arm,
                           config.tolerance) for kind in config.kinds}
    by_kind = ", ".join(f"{kind} {np.mean(r) if len(r) else math.nan:.2f}"
                        for kind, r in of_kind.items())
    return Check.at_most(success(result["base"], arm, config.tolerance), 0.95,
                         f"GD restarts at width {config.width} reaching the optimum (g ≤ "
                         f"{config.tolerance:g}): {config.restarts} on each of "
                         f"{len(certified(result['base']))} certified instances; by kind: "
                         f"{by_kind}")


def check_width(config: GapConfig, result: dict) -> Check:
    if not certified(result["base"]):
        return NONE_CERTIFIED
    widest = max(config.widths)
    narrow, wide = (rates(result["base"], width_arms(w), config.tolerance)
                    for w in (config.width, widest))
    return Check.at_least(over_instances(lambda i: (wide[i] - narrow[i]).mean(), len(wide)),
                          0.0, f"GD and Adam reaching the width-{config.width} optimum: "
                               f"{narrow.mean():.2f} at width {config.width}, {wide.mean():.2f} "
                               f"at width {widest}; per instance, width {widest} minus "
                               f"width {config.width}")


def check_optimiser_vs_width(config: GapConfig, result: dict) -> Check:
    if not certified(result["base"]):
        return NONE_CERTIFIED
    gd, adam = (rates(result["base"], [arm_name(o, config.width, 1)], config.tolerance)
                for o in OPTIMISERS)
    gain = rates(result["base"], width_arms(max(config.widths)), config.tolerance) - (gd + adam) / 2
    return Check.at_least(over_instances(lambda i: gain[i].mean() - abs((adam[i] - gd[i]).mean()),
                                         len(gain)), 0.0,
                          f"at width {config.width}: Adam {adam.mean():.2f}, GD {gd.mean():.2f} "
                          f"(|difference| {abs(adam.mean() - gd.mean()):.2f}); width "
                          f"{max(config.widths)} adds {gain.mean():+.2f}; the gain minus "
                          "|Adam − GD|")


def check_data_size(config: GapConfig, result: dict) -> Check:
    by_size = {n: {i["seed"]: hits(i, width_arms(config.width), config.tolerance).mean()
                   for i in certified(result["size"]) if i["points"] == n} for n in config.sizes}
    small, large = by_size[min(config.sizes)], by_size[max(config.sizes)]
    seeds = sorted(small.keys() & large.keys())
    detail = "; ".join(f"N = {n}: {np.mean(list(by_seed.values())):.2f} over {len(by_seed)} "
                       "instances" for n, by_seed in by_size.items())
    if not seeds:
        return Check.not_checked(None, detail + " (no seed certified at both ends of the sweep)")
    return Check.at_least(mean_interval([small[s] - large[s] for s in seeds]), 0.0,
                          f"{detail}; per seed, N = {min(config.sizes)} minus N = "
                          f"{max(config.sizes)}")


def check_certificate(config: GapConfig, result: dict) -> Check:
    """No run inside the certified class may beat the proven lower bound."""
    worst, count = math.inf, 0
    for i in result["base"]:
        for optimiser in OPTIMISERS:
            run = i["runs"][arm_name(optimiser, config.width, 1)]
            inside = np.asarray(run["loss"], dtype=float)[np.asarray(run["in_box"], dtype=bool)]
            count += len(inside)
            if len(inside):
                scale = max(1.0, abs(i["certificate"]["bound"]))
                worst = min(worst, float((inside - i["certificate"]["bound"]).min() / scale))
    return Check.judge(worst >= -1e-6, worst,
                       f"{count} width-{config.width} runs inside the box; least "
                       f"(L − lower bound)/max(1, bound) = {worst:.3g}")


CLAIMS = (
    Claim("a single GD run misses the certified optimum", "the notes: after training you do "
          "not know whether this is the best model your configuration can reach; gradfail's "
          "hypothesis: at width H, GD succeeds only in some seeds", "P(g ≤ tolerance) for GD "
          "at the certified width below 0.95", check_single_run,
          test="the fraction of GD restarts at the certified width with g ≤ tolerance, over the "
               "certified instances; 95% cluster bootstrap interval, the restarts of an instance "
               "resampled together; holds when at or below 0.95",
          id="a-single-gd-run-misses-the-certified-optimum"),
    Claim("over-parameterisation closes the gap", "gradfail's hypothesis: with 4–8× width the "
          "gap to the width-H optimum closes in most seeds", "success at the widest width "
          "above success at width H (GD and Adam pooled)", check_width,
          test="per certified instance, the fraction of restarts (GD and Adam pooled) with "
               "g ≤ tolerance at the widest width minus at width H; 95% percentile bootstrap of "
               "the mean over instances; holds when at or above 0",
          id="over-parameterisation-closes-the-gap"),
    Claim("the optimiser matters less than the width", "gradfail's hypothesis: Adam vs GD "
          "differences are small compared with the width effect", "|Adam − GD| success at "
          "width H below the gain from the widest width", check_optimiser_vs_width,
          test="over the certified instances, the mean gain in success from width H to the "
               "widest width minus |mean Adam − mean GD success at width H|; 95% percentile "
               "bootstrap, instances resampled; holds when at or above 0",
          id="the-optimiser-matters-less-than-the-width"),
    Claim("success falls with the number of points", "gradfail's hypothesis: the success rate "
          "falls with N", "success at the smallest N above that at the largest (XOR instances, "
          "GD and Adam pooled)", check_data_size,
          test="per seed, the fraction of restarts (GD and Adam pooled) with g ≤ tolerance on "
               "the XOR instance at the smallest N minus on the one at the largest N (both "
               "certified); Student's t 95% interval of the mean over seeds; holds when at or "
               "above 0", id="success-falls-with-the-number-of-points"),
    Claim("the MILP bound is a certificate", "a certified lower bound: no network in the class "
          "has a smaller loss (gradfail's sanity check)", "every width-H run inside the box has "
          "loss ≥ the proven bound − 1e-6 (relative)", check_certificate, kind="sanity",
          id="the-milp-bound-is-a-certificate"),
)


# --------------------------------------------------------------------------------------------
# Figures.


def figures(config: GapConfig, result: dict) -> dict:
    fig, axes = new_grid(2, 2, width=5.0, height=3.4)
    ax_cdf, ax_width, ax_depth, ax_size = axes.ravel()
    colours = {"gd": "tab:blue", "adam": "tab:orange"}
    for optimiser, colour in colours.items():
        arm = arm_name(optimiser, config.width, 1)
        values = np.sort(np.concatenate([gaps(i, arm) for i in certified(result["base"])]
                                        or [[np.nan]]))
        ax_cdf.step(np.clip(values, 1e-6, None), np.arange(1, len(values) + 1) / len(values),
                    where="post", color=colour, label=optimiser)
        for ax, xs, name in ((ax_width, config.widths, lambda w: arm_name(optimiser, w, 1)),
                             (ax_depth, config.depths, lambda d: arm_name(optimiser,
                                                                           config.width, d))):
            fractions(ax, xs, [shown(success(result["base"], [name(v)], config.tolerance))
                               for v in xs], optimiser, colour)
        fractions(ax_size, config.sizes, [shown(success(
            [i for i in result["size"] if i["points"] == n], [arm], config.tolerance))
            for n in config.sizes], optimiser, colour)
    ax_cdf.axvline(config.tolerance, color="black", ls=":", lw=1)
    ax_cdf.set(xscale="log", xlabel="normalised gap g = (L − L*)/(L₀ − L*)",
               ylabel="fraction of restarts", title=f"Restarts at the certified width "
               f"{config.width}")
    ax_width.set(xlabel="student width (1 hidden layer)",
                 ylabel="P(g ≤ tolerance), 95% cluster bootstrap",
                 title=f"Over-parameterisation vs the width-{config.width} optimum")
    log_ticks(ax_width, config.widths)
    ax_depth.set(xlabel=f"hidden layers of width {config.width}", ylabel="P(g ≤ tolerance)",
                 title="Depth", xticks=config.depths)
    ax_size.set(xlabel="training points N (XOR)", ylabel="P(g ≤ tolerance)",
                title="Data size", xticks=config.sizes)
    for ax in (ax_cdf, ax_width, ax_depth, ax_size):
        ax.legend(fontsize=8)
    for ax in (ax_width, ax_depth, ax_size):
        ax.set_ylim(-0.03, 1.03)
    return {"optimality_gap": fig}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "optimality_gap": ("Top left: the normalised gap to the certified optimum over restarts at the "
                       "certified width (dotted: the tolerance). Others: the fraction of restarts "
                       "within tolerance against student width, depth and data size, for GD and "
                       "Adam."),
}


def work(config: GapConfig, seeds: int) -> float:
    """Cost model units: µs (fitted at default): restart steps, MILPs at ~3e-4·N³ s."""
    def arm(width: int, depth: int, n: int) -> float:  # one float64 step of all restarts
        return 350 * (depth + 1) + seeds * config.restarts * n * width * (
            3 + (depth - 1) * width) * 6 / 2e4
    base = [config.l1_points if KINDS[kind] == "l1" else config.hinge_points
            for kind in config.kinds]
    steps = (sum(arm(w, d, n) for n in base for _, w, d in arms(config))
             + sum(2 * arm(config.width, 1, n) for n in config.sizes))
    certify = sum(min(config.time_limit, 3e-4 * n**3) for n in base + config.sizes)
    return config.steps * steps + 1e6 * seeds * certify


EXPERIMENT = Experiment(
    name="optimality_gap",
    section="the notes' open question; Arora et al. 2018",
    title="The optimality gap: GD and Adam against the certified optimum of tiny ReLU nets",
    version=2,
    config_class=GapConfig,
    scales={
        "quick": {"restarts": 32, "steps": 500, "widths": [2, 8], "depths": [1, 2],
                  "sizes": [8, 16], "l1_points": 10, "hinge_points": 10, "time_limit": 30.0},
        "default": {},
        "paper": {"restarts": 200, "steps": 20_000, "widths": [2, 4, 8, 16, 32],
                  "time_limit": 600.0},
    },
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
