"""Asynchronous SGD with a parameter server: what stale gradients do, and which remedies work.

The "cat network" (Le et al. 2012) was trained by Downpour SGD (Dean et al. 2012): many workers
push gradients to a parameter server without waiting for each other, so a gradient is applied to
parameters that have moved since its worker read them, by τ versions (its staleness). Measured
here in the deterministic simulator of `gradfail.distributed.simulator`, on an MLP (64-64-10) for
scikit-learn's digits, every seed trained under the same schedule of delays, and the arms that are
compared on the same initialisation and minibatch stream (paired):
(1) a fixed delay τ ∈ {0 … 32} with the fixed step against the staleness-aware step α₀/τ
(Zhang et al. 2016), also on a synthetic teacher-student regression; α₀/τ gets τ× the updates,
the fixed step's summed step (Zhang et al.'s n-softsync makes ≈ n× the updates per epoch, and
they trained every protocol for the same epochs); (2) the staleness Downpour and n-softsync
actually produce; (3) delay compensation with 4 workers as in Zheng et al. 2017: DC-ASGD-a
(adaptive λ, their CIFAR-10 result) and DC-ASGD-c (constant λ) against plain async and
sequential SGD; (4) synchronous SGD with backup workers under stragglers (Chen et al. 2016):
step time and accuracy; (5) Hogwild! (Niu et al. 2011), lock-free shared-memory SGD on a sparse
problem, 1 vs 2 processes in timed pairs (wall clock: this part alone depends on the machine
and its load).
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
from gradfail.distributed.server import ServerLogic, staleness_summary
from gradfail.distributed.simulator import (
    Delays,
    simulate_async,
    simulate_fixed_delay,
    simulate_sync,
)
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.maths.statistics import CONFIDENCE, Interval, mean_interval
from gradfail.plotting import new_grid

BLOCKS = 10  # a staleness log is judged on the means of this many consecutive blocks


class AsyncConfig(Config):
    """Sizes are ours (a 2-core simulator); the protocols and rules are the papers'."""

    hidden: PositiveInt = Field(64, description="MLP hidden width on digits")
    batch_size: PositiveInt = Field(32, description="per-worker minibatch")
    lrs: list[PositiveFloat] = Field([0.03, 0.1, 0.3, 1.0], min_length=1, description="α₀ "
                                     "is the best of these for sequential SGD (Zhang et al.)")
    updates: PositiveInt = Field(1_000, description="server updates of every run (α₀/τ at "
                                 "delay τ: τ × this)")
    taus: list[NonNegativeInt] = Field([0, 2, 4, 8, 16, 32], min_length=2,
                                       description="fixed delays τ")
    workers: list[PositiveInt] = Field([1, 2, 4, 8, 16], min_length=2,
                                       description="Downpour worker counts")
    learners: PositiveInt = Field(16, description="λ learners of n-softsync")
    softsync: list[PositiveInt] = Field([1, 2, 4, 8, 16], min_length=2, description="n")
    staleness_updates: PositiveInt = Field(1_000, description="updates when only τ is measured")
    dc_workers: PositiveInt = Field(4, description="async workers for DC-ASGD vs plain (Zheng "
                                    "et al.: M = 4)")
    dc_lambda: float = Field(0.04, ge=0, description="DC-ASGD-c's constant λ (MXNet's default)")
    dc_lambda0: float = Field(2.0, ge=0, description="DC-ASGD-a's λ₀")
    dc_momentum: float = Field(0.95, ge=0, lt=1, description="DC-ASGD-a's running mean square "
                               "factor m")
    sync_workers: PositiveInt = Field(16)
    backups: list[NonNegativeInt] = Field([0, 1, 2], min_length=2, description="backup workers b")
    straggler_p: float = Field(0.05, ge=0, le=1)
    straggler_k: float = Field(5.0, ge=1)
    hogwild_examples: PositiveInt = Field(200_000, description="sparse logistic regression")
    hogwild_features: PositiveInt = Field(100_000)
    hogwild_nonzeros: PositiveInt = Field(20, description="non-zero features per example")
    hogwild_epochs: PositiveInt = Field(2)
    hogwild_repeats: PositiveInt = Field(3, description="timed (1 process, 2 processes) pairs")
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
    """A fixed delay τ with the fixed step (rule "async") or the step over τ ("staleness"), on
    the minibatch `stream`: "paired" for every judged arm, "grid" for the runs that choose α₀
    (so the sequential run judged against is not the one selected as best)."""

    kind: ClassVar[str] = "fixed"
    rule: str
    tau: int
    problem: str = "digits"
    stream: str = "paired"

    def updates(self, config: AsyncConfig) -> int:
        """α₀/τ runs τ× the updates: its summed step is the fixed step's."""
        return config.updates * max(self.tau, 1) if self.rule == "staleness" else config.updates

    def compute(self, config: AsyncConfig, lr: float, ctx: RunContext) -> dict:
        task = Task(config, ctx, self.stream, self.problem)
        result = simulate_fixed_delay(task.server(self.rule, lr, history=max(config.taus) + 2),
                                      task.gradient, self.tau, self.updates(config))
        return {"rule": self.rule, "tau": self.tau, "lr": lr, "updates": self.updates(config),
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
        """Staleness depends on the delays alone: the model is a stand-in (one number, zero
        gradient)."""
        per_update = max(self.per_update, 1)
        result = simulate_async(ServerLogic(torch.zeros(1, 1), "async", lr),
                                lambda params, worker, seq: torch.zeros_like(params),
                                self.workers, config.staleness_updates, Delays("constant"),
                                np.random.default_rng(ctx.seed), per_update)
        blocks = np.array_split(np.asarray(result.server.staleness, dtype=float), BLOCKS)
        return {"workers": self.workers, "per_update": per_update,
                "block_means": [float(block.mean()) for block in blocks],
                **staleness_summary(result.server.staleness)}


@dataclass(frozen=True)
class Softsync(Downpour):
    """n-softsync: λ learners, the server waiting for ⌊λ/n⌋ gradients per update."""

    kind: ClassVar[str] = "softsync"


# --------------------------------------------------------------------------------------------
# (3) DC-ASGD vs plain async (Zheng et al. 2017).


@dataclass(frozen=True)
class DelayCompensation(Job):
    """`dc_workers` heterogeneous async workers, plain (rule "async"), DC-ASGD-c ("dc") or
    DC-ASGD-a ("dc-a"), or one worker ("sequential", plain SGD): the same delays and, in event
    order, the same minibatches in every arm."""

    kind: ClassVar[str] = "dc"
    rule: str

    def compute(self, config: AsyncConfig, lr: float, ctx: RunContext) -> dict:
        task = Task(config, ctx, "paired")
        curve: dict = {}
        alone = self.rule == "sequential"
        result = simulate_async(task.server("async" if alone else self.rule, lr), task.gradient,
                                1 if alone else config.dc_workers,
                                config.updates, Delays("heterogeneous"),
                                np.random.default_rng(ctx.seed),
                                on_update=curve_logger(task, config.updates // 20, curve))
        return {"rule": self.rule, "accuracy": task.score(result.server.params), "curve": curve,
                "diverged": ~torch.isfinite(result.server.params).all(1),
                **staleness_summary(result.server.staleness)}


# --------------------------------------------------------------------------------------------
# (4) Synchronous SGD with backup workers under stragglers (Chen et al. 2016).


@dataclass(frozen=True)
class Backups(Job):
    """`sync_workers` workers and b backups, stragglers among them; the first `sync_workers`
    gradients of a step draw the same minibatches whatever b."""

    kind: ClassVar[str] = "sync"
    backups: int

    def compute(self, config: AsyncConfig, lr: float, ctx: RunContext,
                delays: str = "straggler", workers: int | None = None) -> dict:
        task = Task(config, ctx, "paired")
        curve: dict = {}
        schedule = Delays(delays, straggler_p=config.straggler_p, straggler_k=config.straggler_k)
        updates = config.updates // 4  # each step averages `sync_workers` gradients
        result = simulate_sync(task.server("async", lr), task.gradient,
                               workers or config.sync_workers, self.backups, updates, schedule,
                               np.random.default_rng(ctx.seed),
                               on_update=curve_logger(task, max(updates // 20, 1), curve))
        return {"backups": self.backups, "accuracy": task.score(result.server.params),
                "mean_step_time": float(np.mean(result.step_times)),
                "step_times": result.step_times, "dropped": result.dropped, "curve": curve}


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
    return {"pairs": hogwild.timed_pairs(problem, config.hogwild_epochs, config.hogwild_repeats),
            "initial_loss": problem.loss(torch.zeros(problem.features))}


def jobs(config: AsyncConfig) -> list[Job]:
    """(1)–(4) at α₀, in the order they run."""
    return ([FixedDelay(r, t) for r in ("async", "staleness") for t in config.taus]
            + [Downpour(w) for w in config.workers]
            + [Softsync(config.learners, config.learners // n) for n in config.softsync]
            + [DelayCompensation(r) for r in ("sequential", "async", "dc", "dc-a")]
            + [Backups(b) for b in config.backups] + [Versus(config.dc_workers)])


def in_part(ctx: RunContext, advance: Callable[[int], None], key: str, job: Job,
            config: AsyncConfig, lr: float) -> dict:
    """`job` at the step `lr`, as the part `key` (loaded if stored); one step of progress."""
    done = ctx.part(key, lambda: job.compute(config, lr, ctx))
    advance(1)
    return done


def run(config: AsyncConfig, ctx: RunContext) -> dict:
    with ctx.track("α₀ for sequential SGD", len(config.lrs)) as advance:
        grid = [in_part(ctx, advance, f"sequential: lr={lr}",
                        FixedDelay("async", 0, stream="grid"), config, lr) for lr in config.lrs]
    alpha = grid[int(np.argmax([np.mean(r["accuracy"]) for r in grid]))]["lr"]
    with ctx.track("teacher-student", len(config.lrs) + 2 * len(config.taus)) as advance:
        teacher_grid = [in_part(ctx, advance, f"teacher sequential: lr={lr}",
                                FixedDelay("async", 0, "teacher", "grid"), config, lr)
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
# Claims (spec `async_sgd_anchors.md` §1): each part judged on its interval, at confidence
# 1 − 0.05/k when a claim has k parts (Bonferroni).


def fixed(result: dict, rule: str, tau: int) -> np.ndarray:
    """Per seed: the test accuracy of a judged fixed-delay run (rule "async", τ = 0: sequential
    SGD at α₀)."""
    return np.asarray(next(r["accuracy"] for r in result["fixed"]
                           if r["tau"] == tau and r["rule"] == rule), dtype=float)



def check_downpour(config: AsyncConfig, result: dict) -> Check:
    rows = [r for r in result["downpour"] if r["workers"] > 1]
    errors = [abs(r["mean"] - (r["workers"] - 1)) / (r["workers"] - 1) for r in rows]
    detail = ", ".join(f"N={r['workers']}: {r['mean']:.2f}" for r in rows)
    return Check.judge(max(errors) <= 0.1, max(errors), f"mean τ {detail} (N − 1 expected)")


def check_softsync(config: AsyncConfig, result: dict) -> Check:
    rows = result["softsync"]
    confidence = 1 - (1 - CONFIDENCE) / len(rows)
    parts = []
    for row in rows:
        n = config.learners // row["per_update"]
        ratio = mean_interval(np.asarray(row["block_means"]) / n, confidence)
        parts += [Check.at_least(ratio, 0.9, f"n = {n}: mean τ {row['mean']:.2f}; mean τ / n "
                                             "≥ 0.9"), Check.at_most(ratio, 1.1, "and ≤ 1.1")]
    return Check.every(parts, f"λ = {config.learners} learners; the protocol's own mean is "
                              f"n(1 − 1/λ), {1 / config.learners:.0%} below n (the paper's "
                              "λ = 30: 3%)")


def check_staleness_aware(config: AsyncConfig, result: dict) -> Check:
    base = fixed(result, "async", 0)
    taus = [t for t in config.taus if t > 0]
    confidence = 1 - (1 - CONFIDENCE) / len(taus)
    parts = [Check.at_most(mean_interval(base - fixed(result, "staleness", tau), confidence),
                           0.01, f"τ = {tau} ({config.updates * tau:,} updates): sequential − "
                                 f"α₀/τ") for tau in taus]
    return Check.every(parts, f"sequential {base.mean():.3f} ({config.updates:,} updates); "
                       "α₀/τ by τ: " + ", ".join(f"{t}: {fixed(result, 'staleness', t).mean():.3f}" for t in taus)
                 + "; the fixed step α₀ by τ: " + ", ".join(
                     f"{t}: {fixed(result, 'async', t).mean():.3f}" for t in config.taus))


def check_dc(config: AsyncConfig, result: dict) -> Check:
    accuracy = {r["rule"]: np.asarray(r["accuracy"], dtype=float) for r in result["dc"]}
    base = accuracy["sequential"]
    diverged = {r["rule"]: int(np.sum(r["diverged"])) for r in result["dc"]}
    midpoint = (accuracy["async"] + base) / 2
    gap, constant, adaptive = (mean_interval(x) for x in (
        base - accuracy["async"], accuracy["dc"] - midpoint, accuracy["dc-a"] - midpoint))
    detail = (f"{config.dc_workers} workers at α₀ = {result['alpha0']:g}: sequential "
              f"{base.mean():.3f}, async {accuracy['async'].mean():.3f}, DC-ASGD-a "
              f"{accuracy['dc-a'].mean():.3f}, DC-ASGD-c {accuracy['dc'].mean():.3f}; diverged "
              f"(of {len(base)} seeds): async {diverged['async']}, DC-ASGD-a {diverged['dc-a']}, "
              f"DC-ASGD-c {diverged['dc']}; sequential − async {gap.estimate:+.3f} ({gap}); "
              f"DC-ASGD-c − midpoint {constant.estimate:+.3f} ({constant}); ")
    if diverged["dc-a"] > diverged["async"]:
        detail += ("the compensation is a first-order Taylor term, it overshoots when "
                   "λ·|g|·|w − w_read| is not small; ")
    if gap.low <= 0:
        return Check.not_checked(adaptive.estimate, detail + "async is not demonstrably behind "
                                 f"sequential here: no gap to close (DC-ASGD-a − midpoint "
                                 f"{adaptive.estimate:+.3f}, {adaptive})")
    return Check.at_least(adaptive, 0.0, detail + "DC-ASGD-a − midpoint of async and "
                                                  "sequential")


def check_backups(config: AsyncConfig, result: dict) -> Check:
    rows = {r["backups"]: r for r in result["sync"]}
    plain, backed = rows[0], rows[max(config.backups)]
    times = [np.asarray(row["step_times"], dtype=float) for row in (plain, backed)]
    cut = 1 - times[1].mean() / times[0].mean()
    moved = np.abs(np.asarray(plain["accuracy"]) - np.asarray(backed["accuracy"])).max()
    return Check.at_least(mean_interval(0.7 * times[0] - times[1]), 0.0,
                          f"N = {config.sync_workers}, b = {backed['backups']}: mean step time "
                          f"{times[1].mean():.2f} vs {times[0].mean():.2f} ({cut:.0%} less); "
                          f"accuracy {np.mean(backed['accuracy']):.3f} vs "
                          f"{np.mean(plain['accuracy']):.3f} (largest change over seeds "
                          f"{moved:.3f}); per step, 0.7 × time without − with backups")


def check_hogwild(config: AsyncConfig, result: dict) -> Check:
    pairs = result["hogwild"]["pairs"]
    confidence = 1 - (1 - CONFIDENCE) / 2
    ratio = mean_interval(np.log([two["samples_per_s"] / one["samples_per_s"]
                                  for one, two in pairs]), confidence)
    speedup = Interval(*np.exp([ratio.estimate, ratio.low, ratio.high]), ratio.confidence,
                       ratio.n, "t on the log ratio")
    change = mean_interval([abs(two["loss"] - one["loss"]) / one["loss"] for one, two in pairs],
                           confidence)
    return Check.every([Check.at_least(speedup, 1.5, "speed-up of 2 processes over 1 (geometric "
                                               "mean)"),
                  Check.at_most(change, 0.01, "relative change of the final loss")],
                 f"{len(pairs)} timed pairs, samples/s 1 → 2 processes: " + ", ".join(
                     f"{one['samples_per_s']:,.0f} → {two['samples_per_s']:,.0f}"
                     for one, two in pairs) + f"; loss from {result['hogwild']['initial_loss']:.4f}"
                 " to " + ", ".join(f"{one['loss']:.4f} vs {two['loss']:.4f}"
                                    for one, two in pairs) + " (wall clock, under the machine's "
                 "load)")


CLAIMS = (
    Claim("Downpour: mean τ = N − 1", "with N equal workers each gradient is N − 1 versions "
          "stale (the async loop of Ray's parameter-server example)",
          "|mean τ − (N − 1)| ≤ 10% for every N ≥ 2", check_downpour, kind="sanity",
          id="downpour-mean-τ-n-1"),
    Claim("n-softsync: mean τ ≈ n", "⟨τ⟩ ≈ n for n-softsync with λ learners (Zhang et al. "
          "2016, §3)", "|mean τ − n| ≤ 10% of n for every n", check_softsync,
          test="per n, the run's staleness log (one schedule of delays) cut into 10 consecutive "
               "blocks; Student's t interval of the mean of the block means, over n, at "
               "confidence 1 − 0.05/k for the k values of n; holds when it lies within [0.9, "
               "1.1] for every n", id="n-softsync-mean-τ-n"),
    Claim("α₀/τ recovers sequential accuracy", "with α₀/τ every protocol reaches the "
          "sequential error (Zhang et al. 2016, CIFAR-10 ~18%)", "test accuracy within 1 point "
          "of sequential at every τ ≤ 32", check_staleness_aware,
          test="per seed and delay τ > 0, sequential SGD's test accuracy at α₀ minus α₀/τ's "
               "(the same initialisation and minibatch stream; α₀ chosen on separate runs; "
               "α₀/τ runs τ × the updates, the same summed step); Student's t interval of the "
               "mean over seeds at confidence 1 − 0.05/k for the k delays; holds when at or "
               "below 0.01 at every τ", id="α₀-τ-recovers-sequential-accuracy"),
    Claim("DC-ASGD closes the async gap", "DC-ASGD-a 8.19% vs ASGD 9.27% vs sequential 8.65% "
          "(Zheng et al. 2017, CIFAR-10, ResNet-20, 4 workers)", "DC-ASGD-a closes ≥ 50% of "
          "the async → sequential accuracy gap", check_dc,
          test="per seed, DC-ASGD-a's test accuracy minus the mean of plain async's and "
               "sequential SGD's (4 workers; the same initialisation, delays and minibatch "
               "stream in every arm); Student's t 95% interval of the mean over seeds; holds "
               "when at or above 0. Judged only when async is demonstrably behind sequential "
               "(the t interval of their paired difference above 0), else not checked; "
               "DC-ASGD-c (constant λ) reported beside it", id="dc-asgd-closes-the-async-gap"),
    Claim("backup workers cut step time", "sync with backups mitigates the worst stragglers "
          "(Chen et al. 2016)", "the most backups listed (b ≈ 5–12% of N) cut the mean step "
          "time ≥ 30% with accuracy within 1 point", check_backups,
          test="per step (steps independent), 0.7 × the step time without backups minus the "
               "step time with the most backups listed, positive on average exactly when the "
               "mean step time is cut by more than 30%; Student's t 95% interval of the mean "
               "over steps; holds when at or above 0. Accuracy: the same minibatches with and "
               "without backups (the dropped gradients come from the same distribution), so "
               "reported, not judged", id="backup-workers-cut-step-time"),
    Claim("Hogwild! scales without locks", "lock-free SGD on sparse problems: near-linear "
          "speed-up, errors essentially equal (Niu et al. 2011, Table 2)", "2 processes ≥ 1.5× "
          "the samples/s of 1, final loss within 1%", check_hogwild,
          test="per timed pair (1 process, then 2, back to back), the log of the samples/s "
               "ratio and the relative change of the final loss; Student's t intervals of "
               "their means over pairs at 97.5% each; holds when the geometric-mean speed-up "
               "is at or above 1.5 and the loss change at or below 0.01",
          id="hogwild-scales-without-locks"),
)


def plot_delay_sweep(ax, runs: list[dict], metric: str) -> None:
    """The median `metric` over seeds against τ, for the fixed step and for α₀/τ."""
    for rule, colour, label in (("async", "tab:red", "fixed step α₀"),
                                ("staleness", "tab:green", "α₀/τ, τ× the updates")):
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
    for row, colour in zip(result["dc"], ("black", "tab:red", "tab:cyan", "tab:blue"),
                           strict=True):
        accuracy = np.mean(row["curve"]["accuracy"], 1)
        ax_dc.plot(np.arange(1, len(accuracy) + 1) / len(accuracy), accuracy, color=colour,
                   label={"sequential": "sequential", "async": "async", "dc": "DC-ASGD-c",
                          "dc-a": "DC-ASGD-a"}[row["rule"]])
    ax_dc.set(xlabel="fraction of the updates", ylabel="test accuracy",
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
    speeds = np.array([[r["samples_per_s"] for r in pair] for pair in result["hogwild"]["pairs"]])
    losses = np.array([[r["loss"] for r in pair] for pair in result["hogwild"]["pairs"]])
    labels = ["1 process", "2 processes"]
    ax_hog.bar(labels, np.median(speeds, 0), color=["tab:gray", "tab:purple"], alpha=0.6)
    for index in range(2):
        ax_hog.plot([index] * len(speeds), speeds[:, index], "k.")
        ax_hog.annotate(f"loss {np.median(losses[:, index]):.4f}",
                        (index, np.median(speeds[:, index])), ha="center", va="bottom",
                        fontsize=8)
    ax_hog.set(ylabel="samples / s (median; dots: each timed pair)",
               title="Hogwild!: lock-free, sparse logistic regression")
    for ax in (ax_tau, ax_stale, ax_teacher, ax_dc, ax_sync, ax_versus):
        ax.legend(fontsize=8)
    return {"async_sgd": fig}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "async_sgd": ("Asynchronous SGD, panel by panel: accuracy and error against a fixed delay τ "
                  "with step α₀ and with α₀/τ; measured against expected staleness (Downpour, "
                  "n-softsync); Hogwild! throughput on one and two processes; DC-ASGD against "
                  "async and sequential; sync with backup workers; async against sync in virtual "
                  "time."),
}


def work(config: AsyncConfig, seeds: int) -> float:
    """Cost model units: µs (fitted at default): simulated gradients, Hogwild's passes."""
    def gradient(inputs: int) -> float:  # every seed's minibatch through inputs-hidden-outputs
        return 350 + seeds * config.batch_size * config.hidden * inputs * 3 / 2e4
    fixed = len(config.lrs) + len(config.taus) + sum(max(tau, 1) for tau in config.taus)
    synced = 4 + (len(config.backups) * config.sync_workers + sum(config.backups)
                  + config.dc_workers) / 4  # DC arms; sync steps are updates / 4
    hogwild = 1.5 * config.hogwild_repeats * config.hogwild_epochs * config.hogwild_examples \
        * config.hogwild_nonzeros / 4  # 1 process, then 2 (half the time)
    return config.updates * (gradient(74) * (fixed + synced)
                             + gradient(config.teacher_inputs + 1) * fixed) + hogwild


EXPERIMENT = Experiment(
    name="async_sgd",
    section="Dean et al. 2012; Zhang et al. 2016; Zheng et al. 2017; Chen et al. 2016",
    title="Asynchronous SGD with a parameter server: staleness and its remedies",
    version=4,
    config_class=AsyncConfig,
    scales={
        "quick": {"hogwild_examples": 20_000, "hogwild_features": 10_000, "updates": 400,
                  "taus": [0, 4, 16], "workers": [1, 4], "learners": 4, "softsync": [1, 4],
                  "staleness_updates": 200, "sync_workers": 8,
                  "backups": [0, 1]},
        "paper": {"updates": 20_000, "learners": 30, "softsync": [1, 2, 5, 15, 30],
                  "workers": [1, 2, 4, 8, 16, 32], "sync_workers": 96, "backups": [0, 4, 6]},
    },
    seeds={"quick": 2, "default": 8, "paper": 8},
    cores=lambda config: 2,  # Hogwild is timed on two processes; the Ray server on two CPUs
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
