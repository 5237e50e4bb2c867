"""The statistics behind the claims: an interval for every empirical verdict.

Every empirical claim is judged on an interval for its statistic, stated before the run
(`Claim.test`): over seeds (a mean's t-interval, a median's distribution-free order-statistic
interval), over resamples (the percentile bootstrap, by cluster when runs share an instance, so
that 1,600 restarts of 16 instances count as 16), over trials (Wilson's score interval for a
fraction, Newcombe's for a difference of two), and for times to an event that a budget censors
(Kaplan–Meier's survival curve and the log-rank test; Kaplan & Meier 1958, Mantel 1966).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A statistic's estimate and its interval: `confidence` is the interval's actual coverage
    (a median over few seeds cannot reach 95%: its [min, max] over n covers 1 − 2·2⁻ⁿ)."""

    estimate: float
    low: float
    high: float
    confidence: float
    n: int
    method: str

    def __post_init__(self) -> None:
        if not self.low <= self.estimate <= self.high and not math.isnan(self.estimate):
            raise ValueError(f"estimate {self.estimate} outside its interval "
                             f"[{self.low}, {self.high}]")

    def __str__(self) -> str:
        return (f"{self.confidence:.0%} {self.method} interval [{self.low:.3g}, {self.high:.3g}]"
                f", n = {self.n}")


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=float).ravel()
    if len(values) == 0:
        raise ValueError("an interval needs at least one value")
    if not np.isfinite(values).all():
        raise ValueError("an interval over values that are not all finite")
    return values


def mean_interval(values, confidence: float = CONFIDENCE) -> Interval:
    """Student's t-interval for the mean of independent values (one per seed)."""
    values = _finite(values)
    mean, n = float(values.mean()), len(values)
    if n < 2:
        return Interval(mean, -math.inf, math.inf, confidence, n, "t")
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, confidence, n, "t")


def median_interval(values, confidence: float = CONFIDENCE) -> Interval:
    """The distribution-free interval for a median: order statistics [x₍ᵣ₎, x₍ₙ₊₁₋ᵣ₎] with the
    largest rank r whose binomial coverage is at least `confidence`; with too few values for that,
    [min, max] and its actual coverage 1 − 2·2⁻ⁿ."""
    values = np.sort(_finite(values))
    n = len(values)
    estimate = float(np.median(values))
    if n < 2:  # one value says nothing about where the median lies
        return Interval(estimate, -math.inf, math.inf, 0.0, n, "order-statistic")
    rank = 1
    while rank < n / 2 and 1 - 2 * stats.binom.cdf(rank, n, 0.5) >= confidence:
        rank += 1
    coverage = 1 - 2 * stats.binom.cdf(rank - 1, n, 0.5)
    return Interval(estimate, float(values[rank - 1]), float(values[n - rank]), float(coverage), n,
                    "order-statistic")


def bootstrap_interval(values, statistic=np.median, clusters=None, resamples: int = 4_000,
                       confidence: float = CONFIDENCE, seed: int = 0) -> Interval:
    """The percentile bootstrap of `statistic`; with `clusters` (one label per value), whole
    clusters are resampled, so values that share an instance are not counted as independent."""
    values = _finite(values)
    labels = np.zeros(len(values), int) if clusters is None else np.asarray(clusters).ravel()
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} cluster labels for {len(values)} values")
    rng = np.random.default_rng(seed)
    if clusters is None:
        draws = rng.integers(len(values), size=(resamples, len(values)))
        replicates = np.array([statistic(values[row]) for row in draws])
        n = len(values)
    else:
        groups = [values[labels == label] for label in np.unique(labels)]
        n = len(groups)
        picks = rng.integers(n, size=(resamples, n))
        replicates = np.array([statistic(np.concatenate([groups[i] for i in row]))
                               for row in picks])
    low, high = np.quantile(replicates, [(1 - confidence) / 2, (1 + confidence) / 2])
    estimate = float(statistic(values))
    return Interval(estimate, min(float(low), estimate), max(float(high), estimate), confidence,
                    n, "bootstrap" if clusters is None else "cluster bootstrap")


def wilson_interval(hits) -> tuple[float, float, float, int]:
    """(fraction, low, high, count): the fraction of true `hits` and its Wilson 95% interval."""
    interval = fraction_interval(hits)
    return interval.estimate, interval.low, interval.high, interval.n


def fraction_interval(hits, confidence: float = CONFIDENCE) -> Interval:
    """Wilson's score interval for the fraction of true `hits` (Wilson 1927)."""
    hits = np.asarray(hits, dtype=bool).ravel()
    if len(hits) == 0:
        raise ValueError("a fraction of no trials")
    found = stats.binomtest(int(hits.sum()), len(hits)).proportion_ci(confidence, "wilson")
    return Interval(float(hits.mean()), float(found.low), float(found.high), confidence,
                    len(hits), "Wilson")


def fraction_difference_interval(hits_a, hits_b, confidence: float = CONFIDENCE) -> Interval:
    """Newcombe's hybrid score interval for p_a − p_b from two Wilson intervals (Newcombe 1998,
    method 10)."""
    a, b = fraction_interval(hits_a, confidence), fraction_interval(hits_b, confidence)
    difference = a.estimate - b.estimate
    low = difference - math.hypot(a.estimate - a.low, b.high - b.estimate)
    high = difference + math.hypot(a.high - a.estimate, b.estimate - b.low)
    return Interval(difference, low, high, confidence, min(a.n, b.n), "Newcombe")


# --------------------------------------------------------------------------------------------
# Times to an event, censored at a budget.


def kaplan_meier(times, observed) -> tuple[np.ndarray, np.ndarray]:
    """The Kaplan–Meier estimate of P(T > t): the distinct event times and the survival just
    after each. A time with `observed` false is censored (the run ended without the event)."""
    times, observed = np.asarray(times, float).ravel(), np.asarray(observed, bool).ravel()
    if len(times) != len(observed):
        raise ValueError(f"{len(times)} times for {len(observed)} event flags")
    event_times = np.unique(times[observed])
    at_risk = (times[None, :] >= event_times[:, None]).sum(1)
    events = ((times[None, :] == event_times[:, None]) & observed[None, :]).sum(1)
    return event_times, np.cumprod(1 - events / at_risk)


def logrank_test(times_a, observed_a, times_b, observed_b) -> tuple[float, float]:
    """The log-rank test that two censored samples share a survival curve: (observed minus
    expected events in a, two-sided p-value). Negative: a has fewer events than expected."""
    times = np.concatenate([np.ravel(times_a), np.ravel(times_b)]).astype(float)
    observed = np.concatenate([np.ravel(observed_a), np.ravel(observed_b)]).astype(bool)
    in_a = np.arange(len(times)) < np.size(times_a)
    event_times = np.unique(times[observed])
    if len(event_times) == 0:
        return 0.0, 1.0
    at_risk = times[None, :] >= event_times[:, None]
    dies = (times[None, :] == event_times[:, None]) & observed[None, :]
    n, n_a = at_risk.sum(1), (at_risk & in_a).sum(1)
    d, d_a = dies.sum(1), (dies & in_a).sum(1)
    expected = d * n_a / n
    variance = (d * (n_a / n) * (1 - n_a / n) * (n - d) / np.maximum(n - 1, 1)).sum()
    excess = float((d_a - expected).sum())
    if variance <= 0:
        return excess, 1.0
    return excess, float(stats.chi2.sf(excess**2 / variance, 1))
