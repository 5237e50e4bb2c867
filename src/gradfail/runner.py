"""Run an experiment at a config and seeds: skip what is stored, resume what was interrupted.

A run's identity is (experiment, version, resolved config, seed, seeds, device). A complete
identity (done or diverged) is not run again; an incomplete one (killed, failed) resumes,
loading its finished parts from the store and computing the rest.
"""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import gradfail
from gradfail import costs
from gradfail.errors import ConfigError, DeviceError
from gradfail.experiment import (
    ABSURD,
    Config,
    Experiment,
    ProgressTracker,
    SilentProgress,
    config_json,
    judged_on_two_seed_sets,
    restate,
    second_seed_set,
)
from gradfail.perform import Assignment, Job, Performed, perform
from gradfail.plotting import save_png
from gradfail.store import COMPLETE, RunIdentity, Store


def resolve_device(name: str) -> torch.device:
    """`cpu` or `cuda[:i]`; a device this machine lacks is a one-line error."""
    device = named_device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {name}: CUDA is not available here (torch {torch.__version__})")
    return device


def named_device(name: str) -> torch.device:
    """`cpu` or `cuda[:i]` as a torch device, whether or not this machine has it."""
    if name == "cpu" or name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        return torch.device(name)
    raise DeviceError(f"unknown device {name!r}; choose cpu or cuda")


def git_commit() -> str | None:
    """The commit of the gradfail source tree, with `-dirty` for local changes, if it is a repo."""
    source = Path(gradfail.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
            timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def provenance(device: torch.device, threads: int | None = None) -> dict:
    """Versions, commit, machine, device and torch threads (this process's unless the run is
    performed elsewhere with `threads`): recorded with every run."""
    return {
        "gradfail": gradfail.__version__,
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": threads or torch.get_num_threads(),
        "command": shlex.join(["gradfail", *sys.argv[1:]]),
    }


@dataclass
class Outcome:
    """What became of one run: its id, status, claims, and whether it was already stored."""

    id: int
    experiment: str
    scale: str
    seed: int
    n_seeds: int
    status: str
    cached: bool
    claims: list[dict]
    wall_s: float | None = None
    error: str | None = None
    resumed_parts: list[str] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)
    replicate_of: int | None = None

    def as_json(self) -> dict:
        return {
            "id": self.id, "experiment": self.experiment, "scale": self.scale, "seed": self.seed,
            "seeds": self.n_seeds, "status": self.status, "cached": self.cached,
            "wall_s": self.wall_s, "error": self.error, "resumed_parts": self.resumed_parts,
            "figures": self.figures, "replicate_of": self.replicate_of,
            "claims": [
                {key: claim[key] for key in ("id", "name", "paper", "measured", "holds",
                                             "verdict", "detail", "tolerance", "kind", "test",
                                             "interval", "stable", "second_verdict")
                 if key in claim}
                for claim in self.claims
            ],
        }


def run_experiment(
    experiment: Experiment,
    config: Config,
    *,
    scale: str,
    store: Store,
    seed: int = 0,
    n_seeds: int = 1,
    device: torch.device = torch.device("cpu"),
    progress: ProgressTracker | None = None,
    replicate_of: int | None = None,
) -> Outcome:
    """Run (or skip, or resume) one experiment in this process; its row in the store ends
    done/diverged/failed (interrupted on Ctrl-C or SIGTERM, which propagate).
    `replicate_of`: this run repeats the run on that base seed on a second, disjoint seed set
    (its verdicts are compared, never shown on their own)."""
    return performed_here(begin(experiment, config, scale=scale, store=store, seed=seed,
                                n_seeds=n_seeds, device=device, replicate_of=replicate_of),
                          experiment, config, store, progress)


def performed_here(begun: Outcome | Assignment, experiment: Experiment, config: Config,
                   store: Store, progress: ProgressTracker | None) -> Outcome:
    """A begun run performed in this process and finished (a stored outcome as it is)."""
    if isinstance(begun, Outcome):
        return begun
    try:
        performed = perform(experiment, config, begun, store_part(store, begun.run_id),
                            progress)
    except KeyboardInterrupt:
        interrupt(store, begun.run_id)
        raise
    return finish(store, begun, performed)


def begin(experiment: Experiment, config: Config, *, scale: str, store: Store, seed: int,
          n_seeds: int, device: torch.device, replicate_of: int | None = None,
          threads: int | None = None, estimate_s: float | None = None) -> Outcome | Assignment:
    """The stored outcome of a complete run with this identity, or the run begun (a new row, or
    an incomplete one taken over) as an assignment carrying its stored parts. `threads`: the
    torch threads of the process that will perform it, where that is not this one;
    `estimate_s`: the cost model's estimate, recorded beside the wall time it will measure."""
    identity = run_identity(experiment, config, seed, n_seeds, str(device))
    found = store.find_run(identity)
    if found is not None and found["status"] in COMPLETE:
        run = store.run(found["id"])
        return Outcome(run["id"], experiment.name, run["scale"], seed, n_seeds, run["status"],
                       True, restate(run["claims"], experiment.claims), run["wall_s"],
                       run["error"], figures=run["figures"], replicate_of=replicate_of)
    recorded = provenance(device, threads) | {"estimated_s": estimate_s}
    run_id = store.begin_run(identity, scale, recorded, experiment.about(
        config, scale, seed, n_seeds, str(device), replicate_of))
    return Assignment(run_id, experiment.name, config.model_dump_json(), scale, seed, n_seeds,
                      str(device), replicate_of, store.stored_parts(run_id))


def run_identity(experiment: Experiment, config: Config, seed: int, n_seeds: int,
                 device: str) -> RunIdentity:
    """What makes a run the same run: a complete one with this identity is not run again."""
    return RunIdentity(experiment.name, experiment.version, config_json(config), seed, n_seeds,
                       device)


def store_part(store: Store, run_id: int):
    """Save one finished part of a run in the store (what `perform` calls as parts finish)."""
    return lambda key, result, metrics, wall_s: store.save_part(run_id, key, result, metrics,
                                                                wall_s)


def finish(store: Store, assignment: Assignment, performed: Performed) -> Outcome:
    """Store what became of a run (figures written beside the store) and say so; a failure
    in storing it stores the run failed with its reason."""
    figure_dir = store.figures_dir / f"{assignment.run_id}-{assignment.experiment}"
    try:
        figures = {name: str(save_png(data, figure_dir / f"{name}.png"))
                   for name, data in performed.figures.items()}
        store.finish_run(assignment.run_id, performed.status, performed.wall_s,
                         error=performed.error, metrics=performed.metrics,
                         result=performed.result, claims=performed.claims,
                         figures={name: store.figure_path(Path(path))
                                  for name, path in figures.items()},
                         captions=performed.captions)
    except KeyboardInterrupt:
        interrupt(store, assignment.run_id)
        raise
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        performed = Performed("failed", performed.wall_s, f"after the run (storing it): "
                              f"{type(error).__name__}: {reason}",
                              resumed_parts=performed.resumed_parts)
        store.finish_run(assignment.run_id, "failed", performed.wall_s, error=performed.error)
        figures = {}
    return Outcome(assignment.run_id, assignment.experiment, assignment.scale, assignment.seed,
                   assignment.n_seeds, performed.status, False, performed.claims,
                   performed.wall_s, performed.error, performed.resumed_parts, figures,
                   assignment.replicate_of)


def interrupt(store: Store, run_id: int) -> None:
    """A run stopped by Ctrl-C or SIGTERM: stored `interrupted` (it resumes from its parts)."""
    store.finish_run(run_id, "interrupted", 0.0, error="interrupted (Ctrl-C or SIGTERM)")


def checked_plan(plan: list[tuple[Experiment, Config]], seeds: int | None, device: str,
                 backend: str = "local") -> torch.device:
    """Refuse, before anything is stored, a device this machine lacks (for a local run; a Ray
    cluster's nodes have their own) or an absurd number of seeds (over `ABSURD` times the
    experiment's largest at any scale); the device."""
    resolved = resolve_device(device) if backend == "local" else named_device(device)
    for experiment, _ in plan:
        if seeds is not None and seeds > ABSURD * max(experiment.seeds.values()):
            raise ConfigError(f"--seeds {seeds:,} for {experiment.name} is over {ABSURD}x its "
                              f"largest seed count at any scale; refusing an absurd size")
    return resolved


@dataclass(frozen=True)
class PlannedRun:
    """One run a plan asks for, with its cost model's estimate (None: never calibrated)."""

    experiment: Experiment
    config: Config
    seed: int
    n_seeds: int
    replicate_of: int | None
    estimate_s: float | None

    @property
    def cores(self) -> int:
        return self.experiment.cores(self.config)

    def identity(self, device: str) -> RunIdentity:
        return run_identity(self.experiment, self.config, self.seed, self.n_seeds, device)


def planned_runs(plan: list[tuple[Experiment, Config]], *, scale: str, seed: int = 0,
                 seeds: int | None = None, stability: bool = False) -> list[PlannedRun]:
    """The runs of a plan in order: each (experiment, config) on the base seed, then, with
    `stability`, each with an empirical claim on the second, disjoint seed set (a seed-free
    experiment would repeat itself there: Experiment.seeded)."""
    calibration = costs.load_calibration()
    second = [(e, config) for e, config in plan
              if e.has_empirical_claims and e.seeded] if stability else []
    batches = [(plan, seed, None)] + ([(second, second_seed_set(seed), seed)] if second else [])
    runs = []
    for batch, base_seed, replicate_of in batches:
        for experiment, config in batch:
            n_seeds = seeds or experiment.seeds[scale]
            runs.append(PlannedRun(experiment, config, base_seed, n_seeds, replicate_of,
                                   costs.estimate(experiment, config, n_seeds, calibration)))
    return runs


def run_plan(plan: list[tuple[Experiment, Config]], *, scale: str, store: Store, seed: int = 0,
             seeds: int | None = None, device: str = "cpu", backend: str = "local",
             ray_address: str | None = None, progress: bool = False,
             stability: bool = False, jobs: int = 1) -> list[Outcome]:
    """Each (experiment, config) of the plan, locally or as Ray tasks (`backend`); a failed or
    diverged run does not stop the rest. `seeds`: seeds trained together (default: the
    experiment's for the scale); `progress`: bars on stderr; `stability`: each experiment with
    an empirical claim again on a second, disjoint seed set (outcomes of those runs follow the
    plan's, in plan order); `jobs`: local runs side by side in worker processes, one thread
    each (`gradfail.workers`), longest estimate first; 1 runs them in turn in this process."""
    resolved = checked_plan(plan, seeds, device, backend)
    runs = planned_runs(plan, scale=scale, seed=seed, seeds=seeds, stability=stability)

    def begun(run: PlannedRun, threads: int | None = None) -> Outcome | Assignment:
        return begin(run.experiment, run.config, scale=scale, store=store, seed=run.seed,
                     n_seeds=run.n_seeds, device=resolved, replicate_of=run.replicate_of,
                     threads=threads, estimate_s=run.estimate_s)

    def jobs_performed_elsewhere(threads_of: Callable[[int], int]) -> list[Job]:
        return [Job(index, run.cores, lambda run=run: begun(run, threads_of(run.cores)),
                    run.estimate_s) for index, run in enumerate(runs)]

    with progress_bars(enabled=progress) as bars:
        if backend == "ray":
            from gradfail.distributed.ray_sweep import run_on_ray

            done = run_on_ray(jobs_performed_elsewhere(lambda cores: cores), store, bars,
                              address=ray_address)
        elif jobs > 1 and len(runs) > 1:
            from gradfail.workers import run_side_by_side

            done = run_side_by_side(jobs_performed_elsewhere(lambda cores: 1), jobs, store, bars)
        else:
            done = {index: performed_here(begun(run), run.experiment, run.config, store, bars)
                    for index, run in enumerate(runs)}
    return judged_with_replicates([done[index] for index in range(len(runs))])


def judged_with_replicates(outcomes: list[Outcome]) -> list[Outcome]:
    """Each run's claims judged beside its replicate's on the second seed set, when both are
    done (`judged_on_two_seed_sets`)."""
    replicates = {(o.experiment, o.replicate_of): o for o in outcomes
                  if o.replicate_of is not None and o.status == "done"}
    for outcome in outcomes:
        replicate = replicates.get((outcome.experiment, outcome.seed))
        if outcome.replicate_of is None and replicate is not None and outcome.status == "done":
            outcome.claims = judged_on_two_seed_sets(outcome.claims, replicate.claims)
    return outcomes


# --------------------------------------------------------------------------------------------
# Progress bars on a terminal (rich), nothing otherwise.


class RichProgress:
    """Progress bars on stderr, one per long piece of work."""

    def __init__(self, progress) -> None:
        self._progress = progress

    def task(self, description: str, total: int) -> Callable[[int], None]:
        task_id = self._progress.add_task(description, total=total)
        return lambda advance=1: self._progress.advance(task_id, advance)

    def done(self, description: str) -> None:
        self._progress.add_task(description, total=1, completed=1)

    def running(self, description: str) -> Callable[[], None]:
        """A line with its elapsed time while the phase runs, gone when it ends."""
        task_id = self._progress.add_task(f"  {description}", total=None)
        return lambda: self._progress.remove_task(task_id)


@contextmanager
def progress_bars(enabled: bool) -> Iterator[ProgressTracker]:
    """Rich progress bars when `enabled` (stdout is a terminal), silence otherwise."""
    if not enabled:
        yield SilentProgress()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        yield RichProgress(progress)
