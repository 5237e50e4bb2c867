"""An overhead budget: the doctor times itself and spaces its measurements so that they cost at
most a given fraction of the training's own step.

`watch(..., overhead=0.1)`: each call to `dr.step` is timed from its start to its return, and
so is the training between two calls, less the time spent in the doctor's hooks during it (timed
too: they are the doctor's). A step that measures nothing gives the training's own time (the
median over recent ones; one step in 20 is left unmeasured for it); a measured step costs what
it adds to that, in the training (hooks, the traced forward, captured per-sample gradients) and
in the doctor's own call. Measurements come in three kinds,
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

import functools
import math
import time
from collections.abc import Callable
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
    hooked: float = 0.0  # seconds in the doctor's hooks since the last call began
    _left: float | None = None  # when the last dr.step returned
    _entered: float = 0.0
    _training: float = math.inf  # the training before the call in progress
    _hooks: float = 0.0  # the doctor's hooks in it
    _inside: bool = False  # within a call to dr.step
    _typical: float = math.inf  # the median bare step, as of lately
    _bare_seen: int = 0

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
        """A call to dr.step begins: the training since the last call returned, less the
        doctor's hooks in it, is the step's training time."""
        now = time.perf_counter()
        self._hooks, self.hooked = self.hooked, 0.0
        self._training = now - self._left - self._hooks if self._left is not None else math.inf
        self._entered, self._inside = now, True

    def ended(self, plan: set[str]) -> bool:
        """The call returns, its step having measured `plan`; True when the schedule was just
        planned again."""
        now = time.perf_counter()
        training = self._training
        if training > PAUSE * self._typical:
            training = math.inf  # a pause between calls (another job, a checkpoint): no step
        if math.isfinite(training):
            kind = heaviest(plan)
            if kind is None:
                self.bare.append(training)
                self._bare_seen += 1
                if self._bare_seen % QUIET == 5:  # now and then: a median is no per-step cost
                    self._typical = float(np.median(self.bare))
            self.steps.append((kind, training, now - self._entered + self._hooks))
        self._left, self._inside = now, False
        if len(self.steps) < self.replan_every or len(self.bare) < 5:
            return False
        self.overhead = self.measured_overhead()
        self.factor = float(np.clip(self.factor * self.overhead / self.fraction, 1.0, WIDEST))
        self.steps = []
        return True

    def timed(self, hook: Callable) -> Callable:
        """`hook`, its time during the training counted as the doctor's (inside a call to
        dr.step it is already part of the call's time)."""
        @functools.wraps(hook)
        def timed_hook(*args, **kwargs):
            if self._inside:
                return hook(*args, **kwargs)
            start = time.perf_counter()
            try:
                return hook(*args, **kwargs)
            finally:
                self.hooked += time.perf_counter() - start
        return timed_hook

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
