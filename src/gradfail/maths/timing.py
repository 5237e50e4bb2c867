"""Wall-clock timing shared by the experiments that measure time: one warm-up call, then the
median of repeated calls (the median, because a passing load on a shared machine only ever
slows a call down)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def median_seconds(compute: Callable[[], object], repeats: int) -> float:
    """The median wall time of `repeats` calls of `compute`, after one warm-up call."""
    compute()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        compute()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
