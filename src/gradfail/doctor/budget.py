"""An overhead budget: the doctor times itself and spaces its measurements so that they cost at
most a given fraction of the training's own step.

`watch(..., overhead=0.1)`: each call to `dr.step` is timed, and so is the training between two
calls. A step that measures nothing gives the training's own time (the median over recent
ones; one step in 20 is left unmeasured for it); a measured step costs what it adds to that, in the training (hooks, the traced forward,
captured per-sample gradients) and in the doctor's own call. Measurements come in three kinds,
each with its base spacing: the cheap set (gradient, weight and update norms, the stale-gradient
check: no extra pass) every step, the full set (everything else but curvature) every 10th,
curvature every 100th. One factor stretches all three spacings; every `replan_every` steps it is
set to the measured overhead over the budget times its old value (a proportional controller on
a cost that is linear in the factor's inverse), within [1, 5]: the full set is still measured
twice in the rules' window of 100 steps (every 50th step at the widest). Where even the widest
spacing costs more than the budget, the document says the budget was not met. The schedule chosen, the overhead measured and the budget go
into the doctor's document.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

CHEAP = ("layer_gradients", "stale_gradients")  # no extra pass: read after the backward
BASE = {"cheap": 1, "full": 10, "curvature": 100}  # spacings at factor 1
QUIET = 20
PAUSE = 20.0  # training this many bare steps long between two calls is a pause, not a step
WIDEST = 5.0  # the full set every 50th step at the widest: twice in the rules' window of 100


def kind_of(name: str) -> str:
    return "cheap" if name in CHEAP else "curvature" if name == "curvature" else "full"


def heaviest(plan: set[str]) -> str | None:
    """The costliest kind a step measures (None: it measures nothing)."""
    kinds = {kind_of(name) for name in plan}
    return next((kind for kind in ("curvature", "full", "cheap") if kind in kinds), None)


@dataclass
class Budget:
    """The controller: `began()` and `ended(measured)` around each `dr.step`, and `spacings()`
    for the schedule now."""

    fraction: float
    replan_every: int = 100
    factor: float = 1.0
    bare: deque = field(default_factory=lambda: deque(maxlen=200))  # training s, unmeasured
    steps: list = field(default_factory=list)  # (kind, training s, doctor s) since the plan
    overhead: float = math.nan  # measured over the last plan's steps
    _left: float | None = None  # when the last dr.step returned
    _entered: float = 0.0

    def __post_init__(self):
        if not (isinstance(self.fraction, int | float) and 0 < self.fraction <= 10):
            from gradfail.doctor.loggers import DoctorError
            raise DoctorError(f"overhead must be a fraction of the step in (0, 10], e.g. 0.1; "
                              f"got {self.fraction!r}")

    def quiet(self, step: int) -> bool:
        """A step that measures nothing, so that the training's own time stays known when the
        cheap set is due every step: one in QUIET."""
        return step % QUIET == QUIET - 1

    def spacings(self) -> dict[str, int]:
        return {kind: max(1, round(base * self.factor)) for kind, base in BASE.items()}

    def began(self) -> None:
        self._entered = time.perf_counter()

    def ended(self, plan: set[str]) -> bool:
        """Close one timed call, whose step measured `plan`; True when the schedule was just
        planned again."""
        now = time.perf_counter()
        training = self._entered - self._left if self._left is not None else math.inf
        if self.bare and training > PAUSE * float(np.median(self.bare)):
            training = math.inf  # a pause between calls (another job, a checkpoint): no step
        if math.isfinite(training):
            kind = heaviest(plan)
            if kind is None:
                self.bare.append(training)
            self.steps.append((kind, training, now - self._entered))
        self._left = now
        if len(self.steps) < self.replan_every or len(self.bare) < 5:
            return False
        self.overhead = self.measured_overhead()
        self.factor = float(np.clip(self.factor * self.overhead / self.fraction, 1.0, WIDEST))
        self.steps = []
        return True

    def measured_overhead(self) -> float:
        """The doctor's time over the training's own, since the last plan: every call's own
        time, plus what each kind of measured step added to the training (its median over the
        bare median: a pause between calls, a data loader's hiccup, moves neither)."""
        base = float(np.median(self.bare))
        spent = sum(doctor for _, _, doctor in self.steps)
        for kind in BASE:
            times = [training for k, training, _ in self.steps if k == kind]
            if times:
                spent += len(times) * max(float(np.median(times)) - base, 0.0)
        return spent / (base * len(self.steps))

    def document(self) -> dict:
        spacings = self.spacings()
        return {"budget": self.fraction, "overhead": self.overhead, "every": spacings,
                "met": None if math.isnan(self.overhead) else
                not (self.factor >= WIDEST and self.overhead > self.fraction)}


def space(quantities: dict, budget: Budget | None, schedule: dict) -> None:
    """Each quantity's spacing in steps: the budget's plan where there is a budget, and the
    user's `schedule` ({quantity: every, or None for never}) over both."""
    if budget is not None:
        spacings = budget.spacings()
        for name, quantity in quantities.items():
            quantity.every = spacings[kind_of(name)] if quantity.every else None
    for name, every in schedule.items():
        if name not in quantities or not (every is None or isinstance(every, int)
                                          and not isinstance(every, bool) and every > 0):
            from gradfail.doctor.loggers import DoctorError
            raise DoctorError(f"schedule: {name!r}: {every!r} is not a quantity's spacing "
                              f"(quantities: {', '.join(quantities)}; every: a positive "
                              "integer or None)")
        quantities[name].every = every
