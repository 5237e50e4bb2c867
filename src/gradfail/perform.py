"""One run performed wherever it is sent: in this process, in a worker process beside others
(`--jobs N`), or in a Ray task on another node.

The process that owns the store (the driver) begins a run and hands its `Assignment` (the
experiment's name and config, the seeds and the parts already stored) to whoever performs it;
what comes back (`Performed`: status, result, judged claims, figures as PNG bytes with their
captions, metrics) and each part as it finishes travel back to the driver, which alone writes
the store. Nothing here touches the store, so a run can be performed on a machine that cannot
see it.
"""

from __future__ import annotations

import io
import math
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from gradfail.errors import Diverged, GradfailError
from gradfail.experiment import Config, Experiment, ProgressTracker, RunContext, SilentProgress
from gradfail.memory import keep_freed_memory


@dataclass(frozen=True)
class Assignment:
    """One begun run, all a performer needs (picklable): `stored_parts` maps each part key
    already in the store to its (result, wall seconds), so an interrupted run resumes."""

    run_id: int
    experiment: str
    config_json: str
    scale: str
    seed: int
    n_seeds: int
    device: str
    replicate_of: int | None = None
    stored_parts: dict[str, tuple[dict, float]] = field(default_factory=dict)


@dataclass
class Performed:
    """What became of an assignment: its status and, when done, result, claims and figures.
    `wall_s` counts the parts resumed from the store as well as this attempt."""

    status: str
    wall_s: float
    error: str | None = None
    result: dict | None = None
    claims: list[dict] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)  # by figure name: travel with them
    metrics: list[tuple] = field(default_factory=list)
    resumed_parts: list[str] = field(default_factory=list)


@dataclass
class Job:
    """One run of the plan, not begun yet: `begin()` returns a stored outcome (nothing to do)
    or the assignment to perform; `cores` is how many slots it takes; `estimate_s` its cost
    model's estimate (None: unknown)."""

    index: int
    cores: int
    begin: Callable[[], object]
    estimate_s: float | None = None


def dispatch_order(job: Job) -> tuple[int, float, int]:
    """Jobs that take several cores first (they need every slot free, which is so at the start
    without waiting: placed later, each one idles the slots that finish before the others),
    then by decreasing estimate (unknown ones first: they may be the longest), then in order."""
    return (-job.cores, -(math.inf if job.estimate_s is None else job.estimate_s), job.index)


SavePart = Callable[[str, dict, list, float], None]  # (key, result, metrics, wall seconds)


class ResumedParts:
    """The parts of one run: those stored before (read from the assignment) and those computed
    now (handed to `save`, which sends them to the store's owner)."""

    def __init__(self, stored: dict[str, tuple[dict, float]], save: SavePart) -> None:
        self._stored = dict(stored)
        self._save = save
        self.resumed: dict[str, float] = {}

    def load_part(self, key: str) -> dict | None:
        if key not in self._stored:
            return None
        result, wall_s = self._stored[key]
        self.resumed[key] = wall_s
        return result

    def save_part(self, key: str, result: dict, metrics: list[tuple], wall_s: float) -> None:
        self._save(key, result, metrics, wall_s)
        self._stored[key] = (result, wall_s)


def perform(experiment: Experiment, config: Config, assignment: Assignment, save_part: SavePart,
            progress: ProgressTracker | None = None) -> Performed:
    """Run the experiment on the assignment's seeds and device, judge its claims and draw its
    figures. A divergence, a one-line error, running out of memory or a bug in an experiment
    ends it `diverged` or `failed` with its reason (a bug's traceback on stderr); Ctrl-C and
    SIGTERM propagate (the store's owner records the run as interrupted)."""
    keep_freed_memory()  # no page faults on each step's fresh activations (gradfail.memory)
    parts = ResumedParts(assignment.stored_parts, save_part)
    device = torch.device(assignment.device)
    ctx = RunContext(device, assignment.seed, assignment.n_seeds, parts,
                     progress or SilentProgress(), seeded=experiment.seeded)
    start = time.perf_counter()

    def ended(status: str, error: str | None = None, **outcome) -> Performed:
        wall = time.perf_counter() - start + sum(parts.resumed.values())
        return Performed(status, wall, error, metrics=ctx.pending_metrics(),
                         resumed_parts=list(parts.resumed), **outcome)

    try:
        result = experiment.run(config, ctx)
    except Diverged as error:
        return ended("diverged", str(error))
    except GradfailError as error:
        return ended("failed", str(error))
    except (torch.OutOfMemoryError, MemoryError) as error:
        return ended("failed", out_of_memory(error))
    except RuntimeError as error:
        if "allocate" in str(error) or "out of memory" in str(error):
            return ended("failed", out_of_memory(error))
        traceback.print_exc(file=sys.stderr)
        return ended("failed", f"{type(error).__name__}: {error}")
    except Exception as error:  # a bug in an experiment: keep the traceback, keep the sweep going
        traceback.print_exc(file=sys.stderr)
        return ended("failed", f"{type(error).__name__}: {error}")
    try:  # what follows the run can fail too: the run then ends failed, the sweep goes on
        claims = [claim.evaluate(config, result) for claim in experiment.claims]
        figures = {name: png_bytes(figure)
                   for name, figure in experiment.figures(config, result).items()}
        captions = {name: experiment.captions[name] for name in figures
                    if name in experiment.captions}
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return ended("failed", f"after the run (claims or figures): "
                               f"{type(error).__name__}: {reason}")
    return ended("done", result=result, claims=claims, figures=figures, captions=captions)


def out_of_memory(error: BaseException) -> str:
    """One line for an allocation that failed (torch's message names the bytes asked for)."""
    first = (str(error).strip().splitlines() or [""])[0]
    return f"out of memory: {first[:200]}; use fewer seeds or smaller sizes"


def png_bytes(figure) -> bytes:
    """A matplotlib figure as PNG bytes (closed afterwards): figures travel to the driver."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def perform_by_name(assignment: Assignment, save_part: SavePart,
                    progress: ProgressTracker | None = None) -> Performed:
    """`perform` for an assignment sent to another process: the experiment from the registry,
    its config from the assignment's JSON."""
    from gradfail import registry

    experiment = registry.get(assignment.experiment)
    config = experiment.config_class.model_validate_json(assignment.config_json)
    return perform(experiment, config, assignment, save_part, progress)
