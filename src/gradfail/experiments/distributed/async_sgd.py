"""Asynchronous SGD with a parameter server: what stale gradients do, and which remedies work.

The "cat network" (Le et al. 2012) was trained by Downpour SGD (Dean et al. 2012): many workers
push gradients to a parameter server without waiting for each other, so a gradient is applied to
parameters that have moved since its worker read them, by τ versions (its staleness). Measured
here in the deterministic simulator of `gradfail.distributed.simulator`, on an MLP (64-64-10) for
scikit-learn's digits, every seed trained under the same schedule of delays:
(1) a fixed delay τ ∈ {0 … 32} with the fixed step against the staleness-aware step α₀/τ
(Zhang et al. 2016), also on a synthetic teacher-student regression; (2) the staleness Downpour
and n-softsync actually produce; (3) delay compensation, DC-ASGD (Zheng et al. 2017), against
plain async; (4) synchronous SGD with backup workers under stragglers (Chen et al. 2016): step
time and accuracy; (5) Hogwild! (Niu et al. 2011), lock-free shared-memory SGD on a sparse
problem, 1 vs 2 processes (wall-clock, so this part alone depends on the machine).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple, dataclass
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from gradfail.distributed import hogwild
from gradfail.distributed.mlp_task import Task, curve_logger
from gradfail.distributed.server import staleness_summary
from gradfail.distributed.simulator import (
    Delays,
    simulate_async,
    simulate_fixed_delay,
    simulate_sync,
)
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.plotting import new_grid


class AsyncConfig(Config):
    """Sizes are ours (a 2-core simulator); the protocols and rules are the papers'."""

    hidden: PositiveInt = Field(64, description="MLP hidden width on digits")
    batch_size: PositiveInt = Field(32, description="per-worker minibatch")
    lrs: list[PositiveFloat] = Field([0.03, 0.1, 0.3, 1.0], min_length=1, description="α₀ "
                                     "is the best of these for sequential SGD (Zhang et al.)")
    updates: PositiveInt = Field(3_000, description="server updates of every run")
    taus: list[NonNegativeInt] = Field([0, 2, 4, 8, 16, 32], min_length=2,
                                       description="fixed delays τ")
    workers: list[PositiveInt] = Field([1, 2, 4, 8, 16], min_length=2,
                                       description="Downpour worker counts")
    learners: PositiveInt = Field(16, description="λ learners of n-softsync")
    softsync: list[PositiveInt] = Field([1, 2, 4, 8, 16], min_length=2, description="n")
    staleness_updates: PositiveInt = Field(1_000, description="updates when only τ is measured")
    dc_workers: PositiveInt = Field(16, description="async workers for DC-ASGD vs plain")
    dc_lambda: float = Field(0.04, ge=0, description="DC-ASGD's λ (MXNet's default)")
    sync_workers: PositiveInt = Field(16)
    backups: list[NonNegativeInt] = Field([0, 1, 2], min_length=2, description="backup workers b")
    straggler_p: float = Field(0.05, ge=0, le=1)
    straggler_k: float = Field(5.0, ge=1)
    hogwild_examples: PositiveInt = Field(200_000, description="sparse logistic regression")
    hogwild_features: PositiveInt = Field(100_000)
    hogwild_nonzeros: PositiveInt = Field(20, description="non-zero features per example")
    hogwild_epochs: PositiveInt = Field(2)
    teacher_inputs: PositiveInt = Field(20, description="teacher-student input dimension")


@dataclass(frozen=True)
class Job:
    """One simulator run of (1)–(4) on a `Task` (`gradfail.distributed.mlp_task`): a part,
    listed under `kind` in the result and keyed "kind: a, b, α₀=…" by its first two fields
    (b None when it has one)."""

    kind: ClassVar[str]

    def key(self, alpha: float) -> str:
        a, b = (*astuple(self), None)[:2]
        return f"{self.kind}: {a}, {b}, α₀={alpha}"


# --------------------------------------------------------------------------------------------
# (1) Fixed delays, fixed step vs α₀/τ (Zhang et al. 2016).


@dataclass(frozen=True)
class FixedDelay(Job):
    """A fixed delay τ with the fixed step (rule "async") or the step over τ ("staleness")."""

    kind: ClassVar[str] = "fixed"
    rule: str
    tau: int
    problem: str = "digits"

    def compute(self, config: AsyncConfig, lr: float, ctx: RunContext) -> dict:
        task = Task(config, ctx, f"fixed {self.rule} {self.tau} {lr}", self.problem)
        result = simulate_fixed_delay(task.server(self.rule, lr, history=max(config.taus) + 2),
                                      task.gradient, self.tau, config.updates)
        return {"rule": self.rule, "tau": self.tau, "lr": lr,
                task.metric: task.score(result.server.params)}


# --------------------------------------------------------------------------------------------
# (2) The staleness the protocols produce: Downpour (Dean et al.), n-softsync (Zhang et al.).


@dataclass(frozen=True)
class Downpour(Job):
    """N workers at constant speed, the server applying each gradient as it arrives."""

    kind: ClassVar[str] = "downpour"
    workers: int
    per_update: int = 1  # gradients the server waits for (at least one) per update

    def compute(self, config: AsyncConfig, lr: float, ctx: RunContext) -> dict:
        per_update = max(self.per_update, 1)
        task = Task(config, ctx, f"staleness {self.workers} {per_update}")
        result = simulate_async(task.server("async", lr), task.gradient, self.workers,
                                config.staleness_updates, Delays("constant"),
                                np.random.default_rng(ctx.seed), per_update)
        return {"workers": self.workers, "per_update": per_update,
                **staleness_summary(result.server.staleness)}


@dataclass(frozen=True)
class Softsync(Downpour):
    """n-softsync: λ learners, the server waiting for ⌊λ/n⌋ gradients per update."""

    kind: ClassVar[str] = "softsync"


# --------------------------------------------------------------------------------------------
# (3) DC-ASGD vs plain async (Zheng et al. 2017).


@dataclass(frozen=True)
class DelayCompensation(Job):
    """`dc_workers` heterogeneous async workers, plain (rule "async") or DC-ASGD ("dc")."""

    kind: ClassVar[str] = "dc"
    rule: str

    def compute(self, config: AsyncConfig, lr: float, ctx: RunContext) -> dict:
        task = Task(config, ctx, f"async {self.rule}")
        curve: dict = {}
        result = simulate_async(task.server(self.rule, lr), task.gradient, config.dc_workers,
                                config.updates, Delays("heterogeneous"),
                                np.random.default_rng(ctx.seed),
                                on_update=curve_logger(task, config.updates // 20, curve))
        return {"rule": self.rule, "accuracy": task.score(result.server.params), "curve": curve,
                **staleness_summary(result.server.staleness)}


# --------------------------------------------------------------------------------------------
# (4) Synchronous SGD with backup workers under stragglers (Chen et al. 2016).


@dataclass(frozen=True)
class Backups(Job):
    """`sync_workers` workers and b backups, stragglers among them."""

    kind: ClassVar[str] = "sync"
    backups: int

    def compute(self, config: AsyncConfig, lr: float, ctx: RunContext,
                delays: str = "straggler", workers: int | None = None) -> dict:
        task = Task(config, ctx, f"sync {self.backups} {delays}")
        curve: dict = {}
        schedule = Delays(delays, straggler_p=config.straggler_p, straggler_k=config.straggler_k)
        updates = config.updates // 4  # each step averages `sync_workers` gradients
        result = simulate_sync(task.server("async", lr), task.gradient,
                               workers or config.sync_workers, self.backups, updates, schedule,
                               np.random.default_rng(ctx.seed),
                               on_update=curve_logger(task, max(updates // 20, 1), curve))
        return {"backups": self.backups, "accuracy": task.score(result.server.params),
                "mean_step_time": float(np.mean(result.step_times)),
                "dropped": result.dropped, "curve": curve}


@dataclass(frozen=True)
class Versus(Job):
    """Synchronous SGD, no backups, on the heterogeneous workers of (3): async's rival."""

    kind: ClassVar[str] = "versus"
    workers: int

    def compute(self, config: AsyncConfig, lr: float, ctx: RunContext) -> dict:
        return Backups(0).compute(config, lr, ctx, "heterogeneous", self.workers)


# --------------------------------------------------------------------------------------------
# (5) Hogwild! (Niu et al. 2011), and the whole run.


def hogwild_runs(config: AsyncConfig, ctx: RunContext) -> dict:
    problem = hogwild.sparse_problem(config.hogwild_examples, config.hogwild_features,
                                     config.hogwild_nonzeros, seed=ctx.seed)
    runs = [hogwild.hogwild(problem, k, config.hogwild_epochs) for k in (1, 2)]
    return {"runs": runs, "initial_loss": problem.loss(torch.zeros(problem.features))}


def jobs(config: AsyncConfig) -> list[Job]:
    """(1)–(4) at α₀, in the order they run."""
    return ([FixedDelay(r, t) for r in ("async", "staleness") for t in config.taus]
            + [Downpour(w) for w in config.workers]
            + [Softsync(config.learners, config.learners // n) for n in config.softsync]
            + [DelayCompensation(r) for r in ("async", "dc")]
            + [Backups(b) for b in config.backups] + [Versus(config.dc_workers)])


def in_part(ctx: RunContext, advance: Callable[[int], None], key: str, job: Job,
            config: AsyncConfig, lr: float) -> dict:
    """`job` at the step `lr`, as the part `key` (loaded if stored); one step of progress."""
    done = ctx.part(key, lambda: job.compute(config, lr, ctx))
    advance(1)
    return done


def run(config: AsyncConfig, ctx: RunContext) -> dict:
    with ctx.track("α₀ for sequential SGD", len(config.lrs)) as advance:
        grid = [in_part(ctx, advance, f"sequential: lr={lr}", FixedDelay("async", 0), config, lr)
                for lr in config.lrs]
    alpha = grid[int(np.argmax([np.mean(r["accuracy"]) for r in grid]))]["lr"]
    with ctx.track("teacher-student", len(config.lrs) + 2 * len(config.taus)) as advance:
        teacher_grid = [in_part(ctx, advance, f"teacher sequential: lr={lr}",
                                FixedDelay("async", 0, "teacher"), config, lr)
                        for lr in config.lrs]
        teacher_alpha = teacher_grid[int(np.argmin([np.median(r["test_mse"])
                                                    for r in teacher_grid]))]["lr"]
        teacher_jobs = [FixedDelay(r, t, "teacher") for r in ("async", "staleness")
                        for t in config.taus]
        teacher = [in_part(ctx, advance, f"teacher {job.key(teacher_alpha)}", job, config,
                           teacher_alpha) for job in teacher_jobs]
    todo = jobs(config)
    runs_by_kind: dict[str, list[dict]] = {job.kind: [] for job in todo}  # in order of kind
    with ctx.track("async SGD", len(todo)) as advance:
        for job in todo:
            runs_by_kind[job.kind].append(in_part(ctx, advance, job.key(alpha), job, config,
                                                  alpha))
    return {"lr_grid": grid, "alpha0": alpha, **runs_by_kind,
            "hogwild": ctx.part("hogwild", lambda: hogwild_runs(config, ctx)),
            "teacher": teacher, "teacher_lr_grid": teacher_grid, "teacher_alpha0": teacher_alpha}


# --------------------------------------------------------------------------------------------
# Claims (spec `async_sgd_anchors.md` §1).


def sequential(result: dict) -> np.ndarray:
    return np.asarray(next(r["accuracy"] for r in result["fixed"] if r["tau"] == 0
                           and r["rule"] == "async"))


def check_downpour(config: AsyncConfig, result: dict) -> Check:
    rows = [r for r in result["downpour"] if r["workers"] > 1]
    errors = [abs(r["mean"] - (r["workers"] - 1)) / (r["workers"] - 1) for r in rows]
    detail = ", ".join(f"N={r['workers']}: {r['mean']:.2f}" for r in rows)
    return Check.judge(max(errors) <= 0.1, max(errors), f"mean τ {detail} (N − 1 expected)")


def check_softsync(config: AsyncConfig, result: dict) -> Check:
    rows = result["softsync"]
    n = [config.learners // r["per_update"] for r in rows]
    errors = [abs(r["mean"] - k) / k for r, k in zip(rows, n, strict=True)]
    detail = ", ".join(f"n={k}: {r['mean']:.2f}" for r, k in zip(rows, n, strict=True))
    return Check.judge(max(errors) <= 0.1, max(errors),
                       f"λ = {config.learners}, mean τ {detail}")


def check_staleness_aware(config: AsyncConfig, result: dict) -> Check:
    base = sequential(result).mean()
    rows = [r for r in result["fixed"] if r["rule"] == "staleness"]
    worst = min(rows, key=lambda r: np.mean(r["accuracy"]))
    fixed = {r["tau"]: np.mean(r["accuracy"]) for r in result["fixed"] if r["rule"] == "async"}
    drop = base - np.mean(worst["accuracy"])
    return Check.judge(drop <= 0.01, drop,
                       f"sequential {base:.3f}; α₀/τ worst {np.mean(worst['accuracy']):.3f} at "
                       f"τ = {worst['tau']}; fixed step by τ: "
                       + ", ".join(f"{t}: {a:.3f}" for t, a in fixed.items()))


def check_dc(config: AsyncConfig, result: dict) -> Check:
    base = sequential(result).mean()
    accuracy = {r["rule"]: np.mean(r["accuracy"]) for r in result["dc"]}
    gap = base - accuracy["async"]
    detail = (f"sequential {base:.3f}, async {accuracy['async']:.3f}, DC-ASGD "
              f"{accuracy['dc']:.3f} ({config.dc_workers} workers)")
    spread = np.std(sequential(result), ddof=1) if len(sequential(result)) > 1 else 0.0
    if gap <= max(spread, 0.002):
        return Check.not_checked(None, detail + "; async loses nothing here to close")
    closed = (accuracy["dc"] - accuracy["async"]) / gap
    return Check.judge(closed >= 0.5, closed, detail + f"; closes {closed:.0%} of the gap")


def check_backups(config: AsyncConfig, result: dict) -> Check:
    rows = {r["backups"]: r for r in result["sync"]}
    plain = rows[0]
    best = min((r for b, r in rows.items() if b > 0), key=lambda r: r["mean_step_time"])
    cut = 1 - best["mean_step_time"] / plain["mean_step_time"]
    loss = np.mean(plain["accuracy"]) - np.mean(best["accuracy"])
    return Check.judge(cut >= 0.3 and loss <= 0.01, cut,
                       f"N = {config.sync_workers}, b = {best['backups']}: mean step time "
                       f"{best['mean_step_time']:.2f} vs {plain['mean_step_time']:.2f} "
                       f"({cut:.0%} less); accuracy {np.mean(best['accuracy']):.3f} vs "
                       f"{np.mean(plain['accuracy']):.3f}")


def check_hogwild(config: AsyncConfig, result: dict) -> Check:
    one, two = result["hogwild"]["runs"]
    speedup = two["samples_per_s"] / one["samples_per_s"]
    change = abs(two["loss"] - one["loss"]) / one["loss"]
    return Check.judge(speedup >= 1.5 and change <= 0.01, speedup,
                       f"{one['samples_per_s']:,.0f} → {two['samples_per_s']:,.0f} samples/s "
                       f"({speedup:.2f}×); loss {one['loss']:.4f} vs {two['loss']:.4f} "
                       f"(from {result['hogwild']['initial_loss']:.4f})")


CLAIMS = (
    Claim("Downpour: mean τ = N − 1", "with N equal workers each gradient is N − 1 versions "
          "stale (spec §2.1, the Ray example's async loop)", "|mean τ − (N − 1)| ≤ 10% for "
          "every N ≥ 2", check_downpour, kind="sanity"),
    Claim("n-softsync: mean τ ≈ n", "⟨τ⟩ ≈ n for n-softsync with λ learners (Zhang et al. "
          "2016, §3)", "|mean τ − n| ≤ 10% of n for every n", check_softsync),
    Claim("α₀/τ recovers sequential accuracy", "with α₀/τ every protocol reaches the "
          "sequential error (Zhang et al. 2016, CIFAR-10 ~18%)", "test accuracy within 1 point "
          "of sequential at every τ ≤ 32", check_staleness_aware),
    Claim("DC-ASGD closes the async gap", "DC-ASGD 8.19% vs ASGD 9.27% vs sequential 8.65% "
          "(Zheng et al. 2017, CIFAR-10, 4 workers)", "closes ≥ 50% of the async → "
          "sequential accuracy gap", check_dc),
    Claim("backup workers cut step time", "sync with backups mitigates the worst stragglers "
          "(Chen et al. 2016)", "b ≈ 5–10% of N cuts mean step time ≥ 30% with accuracy "
          "within 1 point", check_backups),
    Claim("Hogwild! scales without locks", "lock-free SGD on sparse problems: near-linear "
          "speed-up, errors essentially equal (Niu et al. 2011, Table 2)", "2 processes ≥ 1.5× "
          "the samples/s of 1, final loss within 1%", check_hogwild),
)


def plot_delay_sweep(ax, runs: list[dict], metric: str) -> None:
    """The median `metric` over seeds against τ, for the fixed step and for α₀/τ."""
    for rule, colour, label in (("async", "tab:red", "fixed step α₀"),
                                ("staleness", "tab:green", "α₀/τ")):
        rows = [r for r in runs if r["rule"] == rule]
        ax.plot([r["tau"] for r in rows], [np.median(r[metric]) for r in rows], "o-",
                color=colour, label=label)


def figures(config: AsyncConfig, result: dict) -> dict:
    fig, axes = new_grid(2, 4, width=4.4, height=3.4)
    ax_tau, ax_stale, ax_hog, ax_teacher, ax_dc, ax_sync, ax_versus, ax_empty = axes.ravel()
    ax_empty.axis("off")
    plot_delay_sweep(ax_tau, result["fixed"], "accuracy")
    ax_tau.set(xlabel="fixed delay τ", ylabel="test accuracy",
               title=f"Stale gradients, α₀ = {result['alpha0']:g}")
    plot_delay_sweep(ax_teacher, result["teacher"], "test_mse")
    ax_teacher.set(yscale="log", xlabel="fixed delay τ", ylabel="test MSE / Var(y)",
                   title=f"Teacher-student, α₀ = {result['teacher_alpha0']:g}")
    for rows, label, xs in (
            (result["downpour"], "Downpour", [r["workers"] - 1 for r in result["downpour"]]),
            (result["softsync"], "n-softsync",
             [config.learners // r["per_update"] for r in result["softsync"]])):
        ax_stale.plot(xs, [r["mean"] for r in rows], "o-", label=f"{label} (mean)")
        ax_stale.plot(xs, [r["p99"] for r in rows], "x:", label=f"{label} (p99)")
    top = max(max(config.workers), max(config.softsync))
    ax_stale.plot([0, top], [0, top], "k:", lw=1)
    ax_stale.set(xlabel="expected τ (N − 1, or n)", ylabel="measured τ",
                 title="Measured staleness")
    for row, colour in zip(result["dc"], ("tab:red", "tab:blue"), strict=True):
        ax_dc.plot(row["curve"]["time"], np.mean(row["curve"]["accuracy"], 1), color=colour,
                   label={"async": "async", "dc": "DC-ASGD"}[row["rule"]])
    ax_dc.axhline(sequential(result).mean(), color="black", ls=":", lw=1, label="sequential")
    ax_dc.set(xlabel="virtual time", ylabel="test accuracy",
              title=f"{config.dc_workers} async workers")
    for row in result["sync"]:
        ax_sync.plot(row["curve"]["time"], np.mean(row["curve"]["accuracy"], 1),
                     label=f"b = {row['backups']}")
    ax_sync.set(xlabel="virtual time", ylabel="test accuracy",
                title=f"Sync, {config.sync_workers} workers, stragglers")
    (synchronous,) = result["versus"]
    asynchronous = next(r for r in result["dc"] if r["rule"] == "async")
    for row, label in ((asynchronous, "async (Downpour)"), (synchronous, "sync")):
        ax_versus.plot(row["curve"]["time"], np.mean(row["curve"]["accuracy"], 1), label=label)
    ax_versus.set(xlabel="virtual time", ylabel="test accuracy",
                  title=f"Async vs sync, {config.dc_workers} heterogeneous workers")
    runs = result["hogwild"]["runs"]
    ax_hog.bar([f"{r['processes']} process{'es' if r['processes'] > 1 else ''}" for r in runs],
               [r["samples_per_s"] for r in runs], color=["tab:gray", "tab:purple"])
    for index, r in enumerate(runs):
        ax_hog.annotate(f"loss {r['loss']:.4f}", (index, r["samples_per_s"]), ha="center",
                        va="bottom", fontsize=8)
    ax_hog.set(ylabel="samples / s", title="Hogwild!: lock-free, sparse logistic regression")
    for ax in (ax_tau, ax_stale, ax_teacher, ax_dc, ax_sync, ax_versus):
        ax.legend(fontsize=8)
    return {"async_sgd": fig}


EXPERIMENT = Experiment(
    name="async_sgd",
    section="Dean et al. 2012; Zhang et al. 2016; Zheng et al. 2017; Chen et al. 2016",
    title="Asynchronous SGD with a parameter server: staleness and its remedies",
    version=3,
    config_class=AsyncConfig,
    scales={
        "quick": {"hogwild_examples": 20_000, "hogwild_features": 10_000, "updates": 400,
                  "taus": [0, 4, 16], "workers": [1, 4], "learners": 4, "softsync": [1, 4],
                  "staleness_updates": 200, "dc_workers": 4, "sync_workers": 8,
                  "backups": [0, 1]},
        "paper": {"updates": 20_000, "learners": 30, "softsync": [1, 2, 5, 15, 30],
                  "workers": [1, 2, 4, 8, 16, 32], "sync_workers": 96, "backups": [0, 4, 6]},
    },
    run=run,
    figures=figures,
    claims=CLAIMS,
)
