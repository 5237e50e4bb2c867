"""Exploding gradients in time: the vanilla RNN, its cliffs, and gradient-norm clipping.

Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent neural networks".
For h_t = tanh(W·h_(t−1) + U·x_t + b) with W = ρ·(orthogonal), |tanh'| ≤ 1:

- ρ < 1 is sufficient for vanishing: ‖∂h_T/∂h_0‖ ≤ ρ^T; ρ > 1 is necessary for exploding.
  Measured at initialisation over sequence lengths and ρ;
- the loss surface of a one-unit RNN has cliffs: walls where the gradient jumps by orders of
  magnitude (the paper's Figure 6);
- on the adding problem (predict the sum of the two marked values in a sequence of uniform
  values), plain SGD at lr 0.1 with ρ > 1 diverges or spikes; clipping the gradient's norm at
  τ (g ← τ·g/‖g‖ when ‖g‖ > τ, the paper's Algorithm 1) trains. A GRU, trained unclipped from
  the same recurrent scale, is the gated comparison. The arms are paired: for each seed, the
  clipped and unclipped RNN start from the same weights and every model sees the same batches.
  The clipped ρ > 1 RNNs also train on, in a part of their own, to the 10,000 steps that the
  claim that they learn the task needs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt

from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.maths.statistics import fraction_difference_interval, fraction_interval
from gradfail.nets.deep import initial_weights
from gradfail.plotting import band, log_ticks, new_figure

BASELINE_MSE = 1 / 6  # always predicting 1: Var(U1 + U2) for U ~ U[0, 1] (spec B6)
LEARN_BUDGET = 10_000  # steps the claim that the clipped RNN learns the task needs
ABOVE_ZERO = math.ulp(0.0)  # "clipping helps": a difference strictly above 0


class ExplodingRNNConfig(Config):
    """Spec B6: 64–128 tanh units, T ∈ {50, 100}, SGD lr ∈ {0.01, 0.1}, τ ∈ {1, 5}, 10 seeds."""

    hidden: PositiveInt = Field(64, description="recurrent units")
    init_lengths: list[PositiveInt] = Field([1, 5, 10, 20, 50, 100, 200], min_length=2)
    init_scales: list[PositiveFloat] = Field([0.5, 0.9, 1.0, 1.1, 1.5, 2.0], min_length=1,
                                             description="ρ: W = ρ·orthogonal")
    lengths: list[PositiveInt] = Field([50, 100], min_length=1,
                                       description="adding-problem sequence lengths trained")
    scales: list[PositiveFloat] = Field([0.9, 1.5], min_length=1, description="ρ trained")
    clip: PositiveFloat = Field(1.0, description="τ, the gradient-norm threshold")
    lr: PositiveFloat = Field(0.1, description="SGD learning rate")
    steps: PositiveInt = Field(10_000, description="SGD steps of every model")
    learn_steps: PositiveInt = Field(LEARN_BUDGET, description="SGD steps of the clipped ρ > 1 "
                                     "RNNs in the part of their own that judges learning")
    batch_size: PositiveInt = Field(64)
    eval_every: PositiveInt = Field(50)
    validation: PositiveInt = Field(512, description="fixed validation sequences")
    spike: PositiveFloat = Field(10.0, description="a spike: validation MSE > this × its best")
    cliff_length: PositiveInt = Field(50, description="T of the one-unit RNN (Figure 6)")
    cliff_grid: PositiveInt = Field(301, description="points per axis of the (w, b) scan")


# --------------------------------------------------------------------------------------------
# The adding problem and the two cells, with a leading model axis.


def adding_problem(models: int, count: int, length: int, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """x (models, count, length, 2): values ~ U[0, 1] and a marker channel with one mark in
    each half; y = the sum of the two marked values (Hochreiter & Schmidhuber 1997)."""
    device = generator.device
    values = torch.rand(models, count, length, generator=generator, device=device)
    half = max(length // 2, 1)
    first = torch.randint(0, half, (models, count, 1), generator=generator, device=device)
    second = torch.randint(half, max(length, half + 1), (models, count, 1), generator=generator,
                           device=device).clamp_max(length - 1)
    marks = torch.zeros_like(values).scatter_(2, first, 1.0).scatter_(2, second, 1.0)
    return torch.stack([values, marks], -1), (values * marks).sum(-1)


def recurrent_parameters(cell: str, rho: torch.Tensor, hidden: int, generator: torch.Generator,
                         device: torch.device) -> list[torch.Tensor]:
    """[W (models, gates·h, h) ... ] with each gate's recurrent block ρ·orthogonal, inputs
    N(0, 1/2), a linear read-out N(0, 1/h) and output bias 1 (the mean target)."""
    models, gates = len(rho), {"rnn": 1, "gru": 3}[cell]
    recurrent = torch.cat([initial_weights("orthogonal", "linear", models, hidden, hidden,
                                           generator, device) for _ in range(gates)], dim=2)
    return [recurrent * rho.view(-1, 1, 1),
            torch.randn(models, 2, gates * hidden, generator=generator, device=device) / 2**0.5,
            torch.zeros(models, 1, gates * hidden, device=device),
            torch.randn(models, hidden, 1, generator=generator, device=device) / hidden**0.5,
            torch.ones(models, 1, 1, device=device)]


def run_sequence(cell: str, params: list[torch.Tensor], x: torch.Tensor,
                 h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The prediction from the last state, and that state. x (models, batch, T, 2)."""
    w, u, b, readout, bias = params
    models, batch, length, _ = x.shape
    hidden = readout.shape[1]
    drive = torch.baddbmm(b, x.reshape(models, batch * length, 2), u).reshape(
        models, batch, length, -1).unbind(2)
    if h is None:
        h = torch.zeros(models, batch, hidden, device=x.device)
    for step in drive:
        if cell == "rnn":
            h = torch.tanh(torch.baddbmm(step, h, w))
        else:  # GRU (Cho et al. 2014): reset r, update z, candidate n
            recurrent = torch.bmm(h, w)
            r, z = torch.sigmoid(step[..., : 2 * hidden] + recurrent[..., : 2 * hidden]).chunk(2, -1)
            n = torch.tanh(step[..., 2 * hidden:] + r * recurrent[..., 2 * hidden:])
            h = torch.lerp(n, h, z)
    return torch.baddbmm(bias, h, readout).squeeze(-1), h


# --------------------------------------------------------------------------------------------
# At initialisation: ‖∂h_T/∂h_0‖ over lengths and ρ.


def jacobian_norms(config: ExplodingRNNConfig, ctx: RunContext) -> dict:
    """(seeds, scales, lengths): ‖vᵀ·∂h_T/∂h_0‖ for a random unit v, on adding-problem inputs
    (an unbiased estimate of the Frobenius norm / √h; never above the spectral norm)."""
    scales, lengths = config.init_scales, config.init_lengths
    rho = torch.tensor(scales, device=ctx.device).repeat_interleave(ctx.n_seeds)
    generator = ctx.generator("jacobian")
    params = recurrent_parameters("rnn", rho, config.hidden, generator, ctx.device)
    norms = np.zeros((len(scales) * ctx.n_seeds, len(lengths)))
    for j, length in enumerate(lengths):
        x, _ = adding_problem(len(rho), 1, length, generator)
        h0 = (torch.rand(len(rho), 1, config.hidden, generator=generator, device=ctx.device)
              * 2 - 1).requires_grad_(True)
        _, h = run_sequence("rnn", params, x, h0)
        v = torch.randn(h.shape, generator=generator, device=ctx.device)
        (grad_h0,) = torch.autograd.grad((h * v / v.norm(dim=-1, keepdim=True)).sum(), h0)
        norms[:, j] = grad_h0.flatten(1).norm(dim=1).cpu().numpy()
    return {"scales": scales, "lengths": lengths,
            "norms": norms.reshape(len(scales), ctx.n_seeds, len(lengths)).swapaxes(0, 1)}


# --------------------------------------------------------------------------------------------
# The cliff: a one-unit RNN x_t = w·σ(x_(t−1)) + b, loss (x_T − 0.7)² (Figure 6).


def cliff(config: ExplodingRNNConfig, ctx: RunContext) -> dict:
    w = torch.linspace(-2, 14, config.cliff_grid, device=ctx.device, dtype=torch.float64)
    b = torch.linspace(-8, 2, config.cliff_grid, device=ctx.device, dtype=torch.float64)
    ww, bb = (grid.clone().requires_grad_(True) for grid in torch.meshgrid(w, b, indexing="ij"))
    x = torch.full_like(ww, 0.5)
    for _ in range(config.cliff_length):
        x = ww * torch.sigmoid(x) + bb
    loss = (x - 0.7).square()
    dw, db = torch.autograd.grad(loss.sum(), (ww, bb))
    return {"w": w, "b": b, "loss": loss.detach(), "gradient_norm": torch.hypot(dw, db)}


# --------------------------------------------------------------------------------------------
# Training on the adding problem: vanilla RNN (ρ × clipped or not) and GRU, seeds batched.


def training_grid(config: ExplodingRNNConfig, n_seeds: int) -> list[dict]:
    """One entry per model: cell, ρ, τ (inf = unclipped) and seed."""
    runs = [{"cell": "rnn", "rho": rho, "clip": clip}
            for rho in config.scales for clip in (math.inf, config.clip)]
    runs += [{"cell": "gru", "rho": rho, "clip": math.inf} for rho in config.scales]
    return [{**run, "seed": seed} for run in runs for seed in range(n_seeds)]


def learning_grid(config: ExplodingRNNConfig, n_seeds: int) -> list[dict]:
    """The clipped ρ > 1 RNNs of the training grid: the models that should learn the task."""
    return [run for run in training_grid(config, n_seeds)
            if run["cell"] == "rnn" and run["rho"] > 1 and math.isfinite(run["clip"])]


def models_of(grid: list[dict], config: ExplodingRNNConfig, length: int, ctx: RunContext
              ) -> dict:
    """Per cell: the grid rows it serves, each row's seed and τ, and its parameters. A model's
    initial weights depend only on (cell, ρ, seed): the clipped and unclipped arms of a seed
    start from the same weights, whichever grid they are part of."""
    models = {}
    for cell in ("rnn", "gru"):
        index = [i for i, run in enumerate(grid) if run["cell"] == cell]
        if not index:
            continue
        drawn = {rho: recurrent_parameters(cell, torch.full((ctx.n_seeds,), rho,
                                                            device=ctx.device),
                                           config.hidden, ctx.generator("init", cell, rho,
                                                                        length), ctx.device)
                 for rho in {grid[i]["rho"] for i in index}}
        models[cell] = {
            "index": index,
            "seed": torch.tensor([grid[i]["seed"] for i in index], device=ctx.device),
            "clip": torch.tensor([grid[i]["clip"] for i in index], device=ctx.device),
            "params": [torch.stack([drawn[grid[i]["rho"]][k][grid[i]["seed"]] for i in index]
                                   ).requires_grad_(True) for k in range(5)]}
    return models


def train(config: ExplodingRNNConfig, length: int, ctx: RunContext,
          grid: list[dict] | None = None, steps: int | None = None) -> dict:
    """SGD at lr with per-model clipping; a model that turns non-finite is frozen at NaN.
    Every step draws one batch per seed, which all of that seed's models train on."""
    grid = training_grid(config, ctx.n_seeds) if grid is None else grid
    steps = config.steps if steps is None else steps
    models = models_of(grid, config, length, ctx)
    batches = ctx.generator("batches", length)
    out: dict = {"grid": grid, "length": length, "steps": []}
    curves: dict[str, list] = {"validation": [], "gradient_norm": []}
    val_x, val_y = adding_problem(1, config.validation, length, ctx.generator("validation"))
    max_norm = torch.zeros(len(grid), device=ctx.device)
    with ctx.track(f"exploding RNN: T = {length}, {len(grid)} models", steps) as advance:
        for step in range(steps + 1):
            if step % config.eval_every == 0 or step == steps:
                out["steps"].append(step)
                curves["validation"].append(validation_mse(models, val_x, val_y, len(grid)))
            if step == steps:
                break
            x, y = adding_problem(ctx.n_seeds, config.batch_size, length, batches)
            norms = torch.zeros(len(grid), device=ctx.device)
            for model in models.values():
                norms[model["index"]] = sgd_step(model, x[model["seed"]], y[model["seed"]],
                                                 config.lr)
            max_norm = torch.maximum(max_norm, torch.nan_to_num(norms, nan=math.inf))
            if step % config.eval_every == 0:
                curves["gradient_norm"].append(norms.cpu().numpy())
            advance(1)
    validation = np.array(curves["validation"]).T  # (models, evals)
    return {**out, "validation": validation, "gradient_norm": np.array(curves["gradient_norm"]).T,
            "max_gradient_norm": max_norm.cpu().numpy(), **outcomes(validation, config.spike)}


def sgd_step(model: dict, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
    """One SGD step per model with its own clipping threshold; returns the unclipped norms."""
    cell = "gru" if model["params"][0].shape[2] != model["params"][0].shape[1] else "rnn"
    prediction, _ = run_sequence(cell, model["params"], x)
    loss = (prediction - y).square().mean(1)
    grads = torch.autograd.grad(torch.nan_to_num(loss, nan=0.0, posinf=0.0).sum(),
                                model["params"])
    norm = torch.sqrt(sum(g.flatten(1).square().sum(1) for g in grads))
    scale = torch.clamp(model["clip"] / norm, max=1.0)
    with torch.no_grad():
        for param, g in zip(model["params"], grads, strict=True):
            param -= lr * scale.view(-1, *[1] * (g.dim() - 1)) * g
            param[~torch.isfinite(loss)] = math.nan  # diverged: stays diverged
    return norm


def validation_mse(models: dict, x: torch.Tensor, y: torch.Tensor, n_models: int) -> np.ndarray:
    out = np.zeros(n_models)
    with torch.no_grad():
        for cell, model in models.items():
            count = len(model["index"])
            prediction, _ = run_sequence(cell, model["params"], x.expand(count, -1, -1, -1))
            out[model["index"]] = (prediction - y).square().mean(1).cpu().numpy()
    return out


def outcomes(validation: np.ndarray, spike: float) -> dict:
    """Per model: diverged (a non-finite validation MSE), spiked (an MSE above `spike` × the
    best before it), and the final MSE."""
    finite = np.where(np.isfinite(validation), validation, np.inf)
    best_before = np.minimum.accumulate(finite, axis=1)
    spiked = (finite[:, 1:] > spike * best_before[:, :-1]) & np.isfinite(finite[:, 1:])
    return {"diverged": (~np.isfinite(validation)).any(1), "spiked": spiked.any(1),
            "final_mse": validation[:, -1]}


def run(config: ExplodingRNNConfig, ctx: RunContext) -> dict:
    return {"jacobian": ctx.part("jacobian at init", lambda: jacobian_norms(config, ctx)),
            "cliff": ctx.part("cliff", lambda: cliff(config, ctx)),
            "training": [ctx.part(f"adding problem, T = {length}",
                                  lambda length=length: train(config, length, ctx))
                         for length in config.lengths],
            "learning": [ctx.part(f"clipped RNNs to {config.learn_steps:,} steps, T = {length}",
                                  lambda length=length: train(
                                      config, length, ctx, learning_grid(config, ctx.n_seeds),
                                      config.learn_steps))
                         for length in config.lengths]}


# --------------------------------------------------------------------------------------------
# Claims and figures.


def check_vanishing(config: ExplodingRNNConfig, result: dict) -> Check:
    jac = result["jacobian"]
    norms, lengths = np.asarray(jac["norms"]), np.asarray(jac["lengths"], dtype=float)
    below = [i for i, rho in enumerate(jac["scales"]) if rho < 1]
    if not below:
        return Check.not_checked(None, "needs a ρ < 1")
    worst = max(float((norms[:, i] / np.asarray(jac["scales"])[i] ** lengths).max())
                for i in below)
    return Check.judge(worst <= 1 + 1e-4, worst,
                       f"largest ‖vᵀ∂h_T/∂h_0‖ / ρ^T over ρ < 1, lengths and seeds: {worst:.3g}")


def select(run: dict, **wanted) -> np.ndarray:
    return np.array([all(model[k] == v for k, v in wanted.items()) for model in run["grid"]])


def exploding_runs(config: ExplodingRNNConfig, result: dict):
    """(length, ρ, unclipped mask, clipped mask, run) for every trained ρ > 1."""
    for run in result["training"]:
        for rho in (rho for rho in config.scales if rho > 1):
            yield (run["length"], rho, select(run, cell="rnn", rho=rho, clip=math.inf),
                   select(run, cell="rnn", rho=rho, clip=config.clip), run)


def check_clipping(config: ExplodingRNNConfig, result: dict) -> Check:
    plain, clipped, parts = [], [], []
    for length, rho, unclipped_rows, clipped_rows, run in exploding_runs(config, result):
        failed = np.asarray(run["diverged"]) | np.asarray(run["spiked"])
        plain.append(failed[unclipped_rows])
        clipped.append(failed[clipped_rows])
        parts.append(f"T={length}, ρ={rho}: {failed[unclipped_rows].mean():.0%} of unclipped and "
                     f"{failed[clipped_rows].mean():.0%} of clipped seeds diverge or spike")
    if not parts:
        return Check.not_checked(None, "needs a trained ρ > 1")
    difference = fraction_difference_interval(np.concatenate(plain), np.concatenate(clipped))
    return Check.at_least(difference, ABOVE_ZERO,
                          "; ".join(parts) + "; the difference in failing fractions")


def check_clipped_learns(config: ExplodingRNNConfig, result: dict) -> Check:
    below, parts = [], []
    for run in result["learning"]:
        final = np.asarray(run["final_mse"], dtype=float)
        learnt = np.nan_to_num(final, nan=np.inf) < BASELINE_MSE
        below.append(learnt)
        parts.append(f"T={run['length']}: clipped ρ > 1 RNNs' final validation MSE "
                     f"{', '.join(f'{value:.3f}' for value in final)} "
                     f"({learnt.mean():.0%} below 1/6)")
    if not parts:
        return Check.not_checked(None, "needs a trained ρ > 1")
    found = Check.at_least(fraction_interval(np.concatenate(below)), 0.5,
                           "; ".join(parts) + f" after {config.learn_steps:,} steps; the "
                           "fraction below 1/6")
    if found.verdict == "holds" or config.learn_steps >= LEARN_BUDGET:
        return found
    return Check.not_checked(found.measured, f"{found.detail}; ran {config.learn_steps:,} of "
                             f"the {LEARN_BUDGET:,} steps the claim needs")


CLAIMS = (
    Claim("ρ < 1: gradients vanish at least like ρ^T", "λ1 < 1/γ is sufficient for the "
          "vanishing gradient problem, γ = 1 for tanh (Pascanu et al. 2013, §2.1)",
          "‖vᵀ∂h_T/∂h_0‖ ≤ ρ^T (1e-4 relative slack) for every ρ < 1, T and seed",
          check_vanishing, kind="sanity", id="ρ-1-gradients-vanish-at-least-like-ρ-t"),
    Claim("ρ > 1: unclipped SGD diverges or spikes, clipped does not", "gradient-norm "
          "clipping deals with exploding gradients (Pascanu et al. 2013, §3.2, Algorithm 1)",
          "the difference's interval lies above 0", check_clipping,
          test="over every trained ρ > 1 and length, the fraction of unclipped seeds that "
          "diverge or spike (validation MSE > 10× its best so far) minus the fraction of "
          "clipped seeds that do (same initial weights and batches per seed); 95% Newcombe "
          "interval; holds when it lies above 0, fails when below",
          id="ρ-1-unclipped-sgd-diverges-or-spikes-clipped-does-not"),
    Claim("clipped, the RNN learns the task", "with clipping they train (gradfail's "
          "expectation); clipping does not cure vanishing gradients, so long T may still "
          "fail (Pascanu et al. 2013)",
          "the fraction's interval lies at or above 1/2", check_clipped_learns,
          test="the fraction of clipped ρ > 1 RNN seeds whose validation MSE after learn_steps "
          "is below the constant predictor's 1/6; 95% Wilson interval; holds at or above 1/2 "
          "(most seeds learn), fails below; not checked short of 10,000 steps unless it holds",
          id="clipped-the-rnn-learns-the-task"),
)


def figures(config: ExplodingRNNConfig, result: dict) -> dict:
    jac = result["jacobian"]
    fig1, ax = new_figure()
    for i, rho in enumerate(jac["scales"]):
        band(ax, jac["lengths"], np.asarray(jac["norms"])[:, i], f"ρ = {rho:g}")
    ax.set(yscale="log", xlabel="sequence length T", ylabel="‖vᵀ ∂h_T/∂h_0‖",
           title="Gradient through time at init (tanh RNN, W = ρ·orthogonal)")
    log_ticks(ax, jac["lengths"])
    ax.legend(fontsize=8)

    found = result["cliff"]
    fig2, axes = new_figure(ncols=2, width=4.6, height=3.8)
    shown = {"loss (x_T − 0.7)²": np.asarray(found["loss"]),
             "log10 ‖∇L‖": np.log10(np.asarray(found["gradient_norm"]) + 1e-12)}
    for ax, (name, values) in zip(axes, shown.items(), strict=True):
        image = ax.pcolormesh(found["b"], found["w"], values, shading="auto", cmap="magma")
        fig2.colorbar(image, ax=ax, label=name)
        ax.grid(False)
        ax.set(xlabel="b", ylabel="w", title=name)
    fig2.suptitle(f"The cliff: one-unit RNN x_t = w·σ(x_(t−1)) + b, T = {config.cliff_length} "
                  "(Pascanu et al. Figure 6)")

    fig3, axes = new_figure(ncols=len(result["training"]), width=5.0)
    axes = np.atleast_1d(axes)
    for ax, run, learning in zip(axes, result["training"], result["learning"], strict=True):
        if learning["steps"][-1] > run["steps"][-1]:
            ax.plot(learning["steps"], np.median(np.nan_to_num(learning["validation"], nan=np.inf),
                                                 axis=0), color="grey", ls="--",
                    label=f"clipped ρ > 1 RNNs to {learning['steps'][-1]:,} steps")
        kinds = {(m["cell"], m["rho"], m["clip"]) for m in run["grid"]}
        for cell, rho, clip in sorted(kinds, key=str):
            chosen = select(run, cell=cell, rho=rho, clip=clip)
            label = f"{cell.upper()} ρ={rho:g}" + ("" if math.isinf(clip) else f", τ={clip:g}")
            values = np.asarray(run["validation"], dtype=float)[chosen]
            diverged = np.mean(~np.isfinite(values[:, -1]))
            finite = np.where(np.isfinite(values), values, np.inf)
            ax.plot(run["steps"], np.median(finite, axis=0),  # NaN counts as worst: inf
                    label=label + (f" ({diverged:.0%} diverged)" if diverged else ""))
        ax.axhline(BASELINE_MSE, color="black", ls=":", lw=1)
        ax.set(yscale="log", xlabel="SGD step", ylabel="validation MSE (median; diverged = ∞)",
               title=f"Adding problem, T = {run['length']}, lr {config.lr:g}")
    axes[0].legend(fontsize=7)
    return {"jacobian_vs_length": fig1, "cliff": fig2, "adding_problem": fig3}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "jacobian_vs_length": ("Norm of the gradient through time ‖vᵀ∂h_T/∂h_0‖ at initialisation "
                           "against the sequence length T, per scale ρ of the recurrent weights: "
                           "below 1 it vanishes at least like ρ^T (Pascanu et al. 2013, §2.1)."),
    "cliff": ("Loss and log gradient norm of a one-unit RNN over its weight w and bias b: a narrow "
              "cliff of huge gradients between flat regions (Pascanu et al. 2013, Figure 6)."),
    "adding_problem": ("Validation MSE on the adding problem over SGD steps (median; diverged = "
                       "∞), with and without clipping at threshold τ, per ρ; dotted: the constant "
                       "predictor: unclipped ρ > 1 runs diverge or spike, clipped ones train "
                       "(Pascanu et al. 2013, §3.2)."),
}


def work(config: ExplodingRNNConfig, seeds: int) -> float:
    """Cost model units: µs (fitted at default) per time step: ops + arithmetic."""
    unit = seeds * (3 * config.batch_size + config.validation / config.eval_every) \
        * config.hidden**2 / 3e4  # one h×h recurrence over a step's sequences
    exploding = sum(rho > 1 for rho in config.scales)  # the clipped ρ > 1 RNNs learning alone
    step = config.steps * (620 + 5 * len(config.scales) * unit)  # per ρ: 2 RNNs (h²), a GRU (3h²)
    return sum(config.lengths) * (step + config.learn_steps * (80 + exploding * unit))


EXPERIMENT = Experiment(
    name="exploding_rnn",
    section="Pascanu, Mikolov & Bengio 2013",
    title="Exploding gradients in time, and gradient-norm clipping",
    version=2,
    config_class=ExplodingRNNConfig,
    scales={
        "quick": {"hidden": 32, "init_lengths": [1, 10, 50], "init_scales": [0.5, 1.0, 2.0],
                  "lengths": [50], "steps": 300, "learn_steps": 300, "eval_every": 20,
                  "validation": 256,
                  "cliff_grid": 61},
        "default": {"hidden": 32, "lengths": [50], "steps": 2_000},
        "paper": {},
    },
    seeds={"quick": 3, "default": 4, "paper": 10},
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
