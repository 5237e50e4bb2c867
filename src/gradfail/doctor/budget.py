"""An overhead budget: the doctor times itself and spaces its measurements so that they cost at
most a given fraction of the training's own step.

`watch(..., overhead=0.1)`: each call to `dr.step` is timed from its start to its return, and
so is the training between two calls, less the time spent in the doctor's hooks during it (timed
too: they are the doctor's). The steps that measure nothing give the training's own time (their
median; one step in 20 is left unmeasured for it) and the doctor's fixed cost per step (the mean
of those calls: its bookkeeping and its rule checks). A measured step costs what it adds to the
training (the traced forward, captured per-sample gradients) plus its call; each kind's cost is
the median over its recent steps. Measurements come in three kinds, each with its base spacing:
the cheap set (gradient, weight and update norms, the stale-gradient check: no extra pass) every
step, the full set (everything else but curvature) every 10th, curvature every 100th. One factor
f stretches all three, so the overhead is a cost model, fixed + Σ cost / (base · f), over the
bare step; every `replan_every` steps f is set to the smallest that keeps it within the budget,
within [1, 5]: the full set is still measured twice in the rules' window of 100 steps (every 50th
step at the widest). Where even the widest spacing costs more than the budget, the document says
the budget was not met. The schedule chosen, the overhead the measured costs give at it and the
budget go into the doctor's document.
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
    """The controller: `began()` and `ended(measured)` around each `dr.step`, `timed(hook)` for
    the doctor's hooks, and `spacings()` for the schedule now."""

    fraction: float
    replan_every: int = 100
    factor: float = 1.0
    bare: deque = field(default_factory=lambda: deque(maxlen=200))  # training s, unmeasured
    fixed: deque = field(default_factory=lambda: deque(maxlen=200))  # their calls' s
    costs: dict = field(default_factory=lambda: {kind: deque(maxlen=20) for kind in BASE})
    overhead: float = math.nan  # what the measured costs give at the spacing chosen
    hooked: float = 0.0  # seconds in the doctor's hooks since the last call began
    _calls: int = 0  # timed calls since the last plan
    _left: float | None = None  # when the last dr.step returned
    _entered: float = 0.0
    _training: float = math.inf  # the training before the call in progress
    _hooks: float = 0.0  # the doctor's hooks in it
    _inside: bool = False  # within a call to dr.step
    _typical: float = math.inf  # the median bare step, as of lately

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
        training, spent = self._training, now - self._entered + self._hooks
        self._left, self._inside = now, False
        if not (math.isfinite(training) and training <= PAUSE * self._typical):
            return False  # the first call, or a pause between calls (another job, a checkpoint)
        kind = heaviest(plan)
        if kind is None:
            self.bare.append(training)
            self.fixed.append(spent)
            if len(self.bare) == 5 and not math.isfinite(self._typical):
                self._typical = float(np.median(self.bare))  # then at each plan: no call's cost
        elif math.isfinite(self._typical):
            self.costs[kind].append(training - self._typical + spent)
        self._calls += 1
        if self._calls < self.replan_every or not math.isfinite(self._typical):
            return False
        self._calls = 0
        self._typical = float(np.median(self.bare))
        self.factor, self.overhead = self.plan()
        return True

    def plan(self) -> tuple[float, float]:
        """(the smallest factor in [1, WIDEST] that keeps the overhead within the budget, the
        overhead the measured costs give there): fixed + spaced / factor, in bare steps."""
        fixed = float(np.mean(self.fixed)) / self._typical
        spaced = sum(max(float(np.median(costs)), 0.0) / BASE[kind]
                     for kind, costs in self.costs.items() if costs) / self._typical
        room = self.fraction - fixed
        factor = WIDEST if room <= 0 else float(np.clip(spaced / room, 1.0, WIDEST))
        return factor, fixed + spaced / factor

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

    def document(self) -> dict:
        return {"budget": self.fraction, "overhead": self.overhead, "every": self.spacings(),
                "met": None if math.isnan(self.overhead) else self.overhead <= self.fraction}


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
