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
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import gradfail
from gradfail.errors import ConfigError, DeviceError, Diverged, GradfailError
from gradfail.experiment import (
    ABSURD,
    Config,
    Experiment,
    ProgressTracker,
    RunContext,
    SilentProgress,
    config_json,
    judged_on_two_seed_sets,
    second_seed_set,
)
from gradfail.plotting import save_figure
from gradfail.store import COMPLETE, RunIdentity, Store


def resolve_device(name: str) -> torch.device:
    """`cpu` or `cuda[:i]`; a device this machine lacks is a one-line error."""
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name}: CUDA is not available here (torch {torch.__version__})")
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


def provenance(device: torch.device) -> dict:
    """Versions, commit, machine and device: recorded with every run."""
    return {
        "gradfail": gradfail.__version__,
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "command": shlex.join(["gradfail", *sys.argv[1:]]),
    }


@dataclass
class StoredParts:
    """The store's part table seen through the `PartStore` interface of one run."""

    store: Store
    run_id: int
    resumed_wall_s: float = 0.0
    resumed: list[str] = field(default_factory=list)

    def load_part(self, key: str) -> dict | None:
        stored = self.store.load_part(self.run_id, key)
        if stored is not None:
            self.resumed.append(key)
            self.resumed_wall_s += self.store.part_wall_s(self.run_id, key)
        return stored

    def save_part(self, key: str, result: dict, metrics: list[tuple], wall_s: float) -> None:
        self.store.save_part(self.run_id, key, result, metrics, wall_s)


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
                {key: claim[key] for key in ("name", "paper", "measured", "holds", "verdict",
                                             "detail", "tolerance", "kind", "test",
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
    """Run (or skip, or resume) one experiment; its row in the store ends done/diverged/failed.
    `replicate_of`: this run repeats the run on that base seed on a second, disjoint seed set
    (its verdicts are compared, never shown on their own)."""
    identity = RunIdentity(experiment.name, experiment.version, config_json(config), seed,
                           n_seeds, str(device))
    found = store.find_run(identity)
    if found is not None and found["status"] in COMPLETE:
        run = store.run(found["id"])
        return Outcome(run["id"], experiment.name, run["scale"], seed, n_seeds, run["status"],
                       True, run["claims"], run["wall_s"], run["error"], figures=run["figures"],
                       replicate_of=replicate_of)

    run_id = store.begin_run(identity, scale, provenance(device), experiment.about(
        config, scale, seed, n_seeds, str(device), replicate_of))
    parts = StoredParts(store, run_id)
    ctx = RunContext(device, seed, n_seeds, parts, progress or SilentProgress())
    start = time.perf_counter()

    def close(status: str, error: str | None = None, **stored) -> Outcome:
        wall = time.perf_counter() - start + parts.resumed_wall_s
        recorded = {name: store.figure_path(Path(path))
                    for name, path in (stored.get("figures") or {}).items()}
        store.finish_run(run_id, status, wall, error=error, metrics=ctx.pending_metrics(),
                         **(stored | {"figures": recorded}))
        return Outcome(run_id, experiment.name, scale, seed, n_seeds, status, False,
                       stored.get("claims", []), wall, error, parts.resumed,
                       stored.get("figures") or {}, replicate_of)

    try:
        result = experiment.run(config, ctx)
    except Diverged as error:
        return close("diverged", str(error))
    except KeyboardInterrupt:
        close("interrupted", "interrupted (Ctrl-C or SIGTERM)")
        raise
    except GradfailError as error:
        return close("failed", str(error))
    except (torch.OutOfMemoryError, MemoryError) as error:
        return close("failed", out_of_memory(error))
    except RuntimeError as error:
        if "allocate" not in str(error) and "out of memory" not in str(error):
            traceback.print_exc(file=sys.stderr)
            return close("failed", f"{type(error).__name__}: {error}")
        return close("failed", out_of_memory(error))
    except Exception as error:  # a bug in an experiment: keep the traceback, keep the sweep going
        traceback.print_exc(file=sys.stderr)
        return close("failed", f"{type(error).__name__}: {error}")
    try:  # what follows the run can fail too: the run is then stored failed, the sweep goes on
        claims, figures = judged_and_drawn(experiment, config, result,
                                           store.figures_dir / f"{run_id}-{experiment.name}")
        return close("done", result=result, claims=claims, figures=figures)
    except KeyboardInterrupt:
        close("interrupted", "interrupted (Ctrl-C or SIGTERM)")
        raise
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return close("failed", f"after the run (claims, figures or storing): "
                               f"{type(error).__name__}: {reason}")


def out_of_memory(error: BaseException) -> str:
    """One line for an allocation that failed (torch's message names the bytes asked for)."""
    first = (str(error).strip().splitlines() or [""])[0]
    return f"out of memory: {first[:200]}; use fewer seeds or smaller sizes"


def judged_and_drawn(experiment: Experiment, config: Config, result: dict,
                     figure_dir: Path) -> tuple[list[dict], dict[str, str]]:
    """A finished run's claims, judged, and its figures, saved under `figure_dir`."""
    claims = [claim.evaluate(config, result) for claim in experiment.claims]
    figures = {name: str(save_figure(figure, figure_dir / f"{name}.png"))
               for name, figure in experiment.figures(config, result).items()}
    return claims, figures


def checked_plan(plan: list[tuple[Experiment, Config]], seeds: int | None, device: str
                 ) -> torch.device:
    """Refuse, before anything is stored, a device this machine lacks or an absurd number of
    seeds (over `ABSURD` times the experiment's largest at any scale); the device."""
    resolved = resolve_device(device)
    for experiment, _ in plan:
        if seeds is not None and seeds > ABSURD * max(experiment.seeds.values()):
            raise ConfigError(f"--seeds {seeds:,} for {experiment.name} is over {ABSURD}x its "
                              f"largest seed count at any scale; refusing an absurd size")
    return resolved


def run_plan(plan: list[tuple[Experiment, Config]], *, scale: str, store: Store, seed: int = 0,
             seeds: int | None = None, device: str = "cpu", backend: str = "local",
             ray_address: str | None = None, progress: bool = False,
             stability: bool = False) -> list[Outcome]:
    """Each (experiment, config) in turn, locally or as Ray tasks (`backend`); a failed or
    diverged run does not stop the rest. `seeds`: seeds trained together (default: the
    experiment's for the scale); `progress`: bars on stderr; `stability`: each experiment with
    an empirical claim again on a second, disjoint seed set (outcomes of those runs follow the
    plan's, in plan order)."""
    resolved = checked_plan(plan, seeds, device)
    second = [(e, config) for e, config in plan if e.has_empirical_claims] if stability else []
    batches = [(plan, seed, None)] + ([(second, second_seed_set(seed), seed)] if second else [])
    outcomes = []
    if backend == "ray":
        from gradfail.distributed.ray_sweep import run_on_ray

        for runs, base_seed, replicate_of in batches:
            outcomes += run_on_ray(runs, scale=scale, store_path=str(store.path), seed=base_seed,
                                   seeds=seeds, device=device, address=ray_address,
                                   replicate_of=replicate_of)
        return judged_with_replicates(outcomes)
    with progress_bars(enabled=progress) as bars:
        for runs, base_seed, replicate_of in batches:
            for experiment, config in runs:
                outcomes.append(run_experiment(
                    experiment, config, scale=scale, store=store, seed=base_seed,
                    n_seeds=seeds or experiment.seeds[scale], device=resolved, progress=bars,
                    replicate_of=replicate_of))
    return judged_with_replicates(outcomes)


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
