"""The window of the history the doctor's rules read (gradfail.doctor.evidence): the last steps as
columns, and the statistics several rules share (medians, the loss's trend and its noise, the
smoothed loss's swings, the input-independent baseline), each computed once per check."""

from __future__ import annotations

import math
import statistics

import numpy as np

from gradfail.doctor.config import DoctorConfig


class Window:
    """The last `config.window` steps of a history, as columns, with the statistics the rules
    share and the thresholds they compare them with (`config`, gradfail.doctor.config)."""

    def __init__(self, history: list[dict], context, config: DoctorConfig):
        self.all, self.context, self.config = history, context, config
        self.records = history[-config.window:]
        self.size = len(self.records)
        self.columns: dict[str, list[float]] = {}
        for record in self.records:
            for key, value in record.items():
                self.columns.setdefault(key, []).append(value)
        self._medians: dict[str, float] = {}
        self._cache: dict = {}

    def cached(self, key, compute):
        """A statistic computed once per window (several rules read the same ones)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def values(self, key: str) -> np.ndarray:
        values = np.array(self.columns.get(key, ()), dtype=float)
        return values[np.isfinite(values)]

    def median(self, key: str) -> float:
        """The median of a quantity's finite values in the window (NaN if none)."""
        if key not in self._medians:
            finite = [v for v in self.columns.get(key, ()) if v is not None
                      and math.isfinite(v)]
            self._medians[key] = statistics.median(finite) if finite else math.nan
        return self._medians[key]

    def by_suffix(self, prefix: str) -> dict[str, float]:
        return self.cached(("suffix", prefix), lambda: {
            k.removeprefix(prefix): self.median(k) for k in self.columns
            if k.startswith(prefix)})

    @property
    def losses(self) -> np.ndarray:
        return np.array(self.columns["loss"], dtype=float)

    @property
    def broken(self) -> bool:
        """A loss, weight or gradient that is not finite in the window."""
        return not np.isfinite(self.losses).all() or any(k.startswith("nonfinite/")
                                                         for k in self.columns)

    @property
    def full(self) -> bool:
        return self.size >= self.config.window

    @property
    def decrease(self) -> float:
        """Relative loss decrease over the window: median of its first third vs its last."""
        losses = self.losses
        third = max(len(losses) // 3, 1)
        first, last = np.median(losses[:third]), np.median(losses[-third:])
        return float((first - last) / max(abs(first), 1e-12))

    @property
    def input_gain(self) -> float:
        """(baseline − loss)/|baseline| on the window's medians over the steps that measured the
        baseline (an input-independent prediction's loss): medians, as a small batch's loss is
        one draw of a heavy-tailed variable."""
        def compute() -> float:
            pairs = [(r["baseline_loss"], r["loss"]) for r in self.records
                     if "baseline_loss" in r and math.isfinite(r["baseline_loss"])]
            if not pairs:
                return math.nan
            baseline = statistics.median(b for b, _ in pairs)
            return (baseline - statistics.median(x for _, x in pairs)) / max(abs(baseline),
                                                                             1e-12)
        return self.cached("input_gain", compute)

    def trend(self, steps: int | None = None) -> float:
        """The t statistic of the loss's slope over the window (or over the last `steps`
        steps): how far the trend stands out of the step-to-step noise (negative: falling)."""
        return self.cached(("trend", steps), lambda: self._trend(steps))

    def _trend(self, steps: int | None) -> float:
        losses = self.losses if steps is None else np.array(
            [r["loss"] for r in self.all[-steps:]], dtype=float)
        if len(losses) < 10 or not np.isfinite(losses).all():
            return math.nan
        steps = np.arange(len(losses), dtype=float)
        slope, intercept = np.polyfit(steps, losses, 1)
        spread = (losses - intercept - slope * steps).std()
        error = spread / (steps.std() * math.sqrt(len(losses)))
        return float(slope / error) if error > 0 else math.copysign(math.inf, slope)

    def regression(self) -> float:
        return self.cached("regression", self._regression)

    def _regression(self) -> float:
        """How much of its progress the loss has given back: (log now − log best)/(log start −
        log best), on medians of blocks of 20 steps over the whole run (0: at its best; 1: back
        where it started)."""
        losses = np.array([r["loss"] for r in self.all], dtype=float)
        blocks = len(losses) // 20
        if blocks < 3 or not np.isfinite(losses).all() or losses.min() <= 0:
            return math.nan
        levels = np.log(np.median(losses[:blocks * 20].reshape(blocks, 20), axis=1))
        gained = levels[0] - levels.min()
        if gained < math.log(self.config.progressed) or int(np.argmin(levels)) > blocks - 4:
            return 0.0  # no real progress to give back, or the best is too recent to judge
        return float((levels[-3:].min() - levels.min()) / gained)  # held for 60 steps

    def waves(self) -> tuple[float, float]:
        return self.cached("waves", self._waves)

    def _waves(self) -> tuple[float, float]:
        """(variance ratio, swing): the variance of the window's loss smoothed over 5 steps,
        around a quadratic trend, over what batch noise alone would leave (≈ 1 for noise, up
        to 5 for swings slower than 5 steps); and the smoothed swings relative to the level."""
        losses = self.losses
        if len(losses) < 40 or not np.isfinite(losses).all():
            return math.nan, math.nan
        smooth = np.convolve(losses, np.ones(5) / 5, mode="valid")

        def residual(series):
            steps = np.arange(len(series), dtype=float)
            return series - np.polyval(np.polyfit(steps, series, 2), steps)
        raw = residual(losses).var() / 5
        swings = residual(smooth)
        return (float(swings.var() / raw) if raw > 0 else 0.0,
                float(swings.std() / max(abs(np.median(losses)), 1e-12)))

    def signal(self) -> tuple[float, float]:
        return self.cached("signal", self._signal)

    def _signal(self) -> tuple[float, float]:
        """(mean cosine of consecutive gradients, its t statistic against 0)."""
        cosines = self.values("grad_cosine")
        if len(cosines) < 3:
            return math.nan, math.nan
        error = cosines.std(ddof=1) / math.sqrt(len(cosines))
        mean = float(cosines.mean())
        return mean, mean / error if error > 0 else math.copysign(math.inf, mean)

    def sharpness(self) -> float:
        """lr·λ_max over the stability limit (SGD and heavy ball only)."""
        return self.median("lr_lambda_max") / self.median("stability_limit")

    def trend_text(self) -> str:
        gain = self.input_gain
        return (f"the loss fell {self.decrease:.0%} over the last {self.size} steps"
                + (f" and is {gain:.0%} below an input-independent prediction's"
                   if math.isfinite(gain) else ""))
