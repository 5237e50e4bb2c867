"""Small statistics shared by the experiments' claims."""

from __future__ import annotations

import numpy as np
from scipy import stats


def wilson_interval(hits) -> tuple[float, float, float, int]:
    """(fraction, low, high, count): the fraction of true `hits` and its Wilson 95% interval."""
    hits = np.asarray(hits, dtype=bool).ravel()
    interval = stats.binomtest(int(hits.sum()), len(hits)).proportion_ci(0.95, "wilson")
    return float(hits.mean()), float(interval.low), float(interval.high), len(hits)
