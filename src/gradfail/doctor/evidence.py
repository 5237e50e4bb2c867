"""The doctor's rules, one function a verdict: each reads a `Window` of the history and returns a
`Finding` (gradfail.doctor.rules) with the numbers it read, or None.

The thresholds below are of two kinds. Definitions: half of a layer's units dead, half of a
smooth activation's derivatives below 1% of its typical one, nine in ten of a log-loss's input
rows that are probability vectors, a gradient held over from the last step at all. Settings
(marked "set on dev"): chosen on the development half of the benchmark programs
(gradfail.doctor.bench), never on the held-out half.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

# definitions
STALE = 0.01  # a held-over gradient ≥ 1% of the stepped one (cleared gradients give exactly 0)
PROBABILITIES = 0.9  # rows of a log-loss's input that are probability vectors
FLAT = 0.9  # zero derivatives of a flat function on the gradient path
DEAD = 0.5  # units with zero derivative on every sample, in a one-sided (ReLU-like) function
SATURATED = 0.5  # derivatives below 1% of the function's typical one, in a smooth function
SIGNIFICANT = 2.0  # standard errors: the gradient holds signal when its alignment is above 0
# set on dev
LEARNING = 0.05  # relative loss decrease over the window that counts as learning
INPUT_GAIN = 0.05  # a model this much better than its input-independent baseline has learned
INPUT_RMS = 20.0  # an input feature this large (RMS) is on a raw scale
INPUT_SPREAD = 1e3  # feature standard deviations this far apart
VANISHING = 1e-2  # gradient at the first activation over the last (or first time step / last)
EXPLODING = 1e2
GROWTH = 1e2  # gradient norm now over its early median
BOUNCING = -0.3  # lag-1 autocorrelation of the detrended loss: step-to-step overshoot
WAVES = 0.5  # lag-1 autocorrelation of the detrended loss: swings spanning several steps
SWING = 0.1  # the detrended loss's spread relative to its level
ILL_CONDITIONED = 1e4  # λ_max/λ_min
AT_THE_EDGE = 0.1  # lr·λ_max over the stability limit: the step is as large as it may be
SMALL_STEP = 0.01  # lr·λ_max over the limit: room for a step 100× larger
TINY_UPDATE = 1e-4  # update/weight ratio per step
CONSISTENT = 0.5  # cosine of consecutive gradients: signal-dominated
NOISY = 0.2  # below this, noise-dominated


class Window:
    """The last `size` steps of a history, as columns, with the statistics the rules share."""

    def __init__(self, history: list[dict], size: int, context):
        self.all, self.context = history, context
        self.records = history[-size:]
        self.size = len(self.records)
        self.columns: dict[str, list[float]] = {}
        for record in self.records:
            for key, value in record.items():
                self.columns.setdefault(key, []).append(value)
        self._medians: dict[str, float] = {}

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
        return {k.removeprefix(prefix): self.median(k) for k in self.columns
                if k.startswith(prefix)}

    @property
    def losses(self) -> np.ndarray:
        return np.array(self.columns["loss"], dtype=float)

    @property
    def decrease(self) -> float:
        """Relative loss decrease over the window: median of its first third vs its last."""
        losses = self.losses
        third = max(len(losses) // 3, 1)
        first, last = np.median(losses[:third]), np.median(losses[-third:])
        return float((first - last) / max(abs(first), 1e-12))

    @property
    def progress(self) -> float:
        """1 − (recent loss)/(initial loss): how far the run has come since its first steps."""
        start = np.median([r["loss"] for r in self.all[:10]])
        now = np.median(self.losses[-max(self.size // 3, 1):])
        return float(1 - now / max(abs(start), 1e-12))

    @property
    def input_gain(self) -> float:
        """(baseline − loss)/|baseline|, the baseline an input-independent prediction."""
        gains = [(r["baseline_loss"] - r["loss"]) / max(abs(r["baseline_loss"]), 1e-12)
                 for r in self.records if "baseline_loss" in r]
        return float(np.median(gains)) if gains else math.nan

    @property
    def broken(self) -> bool:
        """A loss, weight or gradient that is not finite in the window."""
        return not np.isfinite(self.losses).all() or any(k.startswith("nonfinite/")
                                                         for k in self.columns)

    @property
    def learning(self) -> bool:
        """The loss still falls, or the model is far past its input-independent baseline."""
        return self.decrease > LEARNING or self.input_gain > 0.5

    def trend(self) -> str:
        gain = self.input_gain
        return (f"loss fell {self.decrease:.0%} over the last {self.size} steps, "
                f"{self.progress:.0%} since the start"
                + (f", {gain:.0%} below an input-independent prediction's"
                   if math.isfinite(gain) else ""))

    def detrended(self) -> tuple[float, float]:
        """(lag-1 autocorrelation, spread relative to the level) of the window's loss after a
        straight-line fit is removed."""
        losses = self.losses
        if len(losses) < 10 or not np.isfinite(losses).all():
            return math.nan, math.nan
        steps = np.arange(len(losses))
        residual = losses - np.polyval(np.polyfit(steps, losses, 1), steps)
        spread = residual.std()
        if spread == 0:
            return 0.0, 0.0
        lag = float(np.corrcoef(residual[:-1], residual[1:])[0, 1])
        return lag, float(spread / max(abs(np.median(losses)), 1e-12))


def finding(name: str, strength: float, text: str, layers=()):
    from gradfail.doctor.rules import Finding
    return Finding(name, strength, text, tuple(layers))


def worst(values: dict[str, float]) -> tuple[str, float]:
    return max(((k, v) for k, v in values.items() if math.isfinite(v)),
               key=lambda kv: kv[1], default=("", math.nan))


# -- bugs: certain from one measurement -----------------------------------------------------------
def diverged(w: Window):
    """The first step whose loss, weights or gradients were not finite, and what grew first."""
    if not w.broken:
        return None
    for index, record in enumerate(w.all):
        broken = [k.removeprefix("nonfinite/") for k in record if k.startswith("nonfinite/")]
        if math.isfinite(record["loss"]) and not broken:
            continue
        before = w.all[max(0, index - 20):index]
        norms = [r["grad_norm"] for r in before if math.isfinite(r.get("grad_norm", math.nan))]
        early = [r["grad_norm"] for r in w.all[:10] if math.isfinite(r.get("grad_norm",
                                                                           math.nan))]
        growth = max(norms) / max(np.median(early), 1e-30) if norms and early else math.nan
        first = broken[0] if broken else "the loss"
        cause = (f"; the gradient norm had grown {growth:.1e}× before it" if growth > 10 else
                 "; with no growth before it: a log or a division of 0, or an overflow, in the "
                 "loss or the forward pass" if math.isfinite(growth) else "")
        layer = first.split("/", 1)[1] if "/" in first else ""
        return finding("diverged", math.inf, f"{first} became non-finite at step "
                       f"{record['step']}{cause}", [layer] if layer else [])
    return None


def accumulating(w: Window):
    stale = w.median("stale_grad_ratio")
    if stale > STALE:
        return finding("gradients accumulate", stale / STALE, f"when each step's backward "
                       f"began, the gradients still held {stale:.0%} of what the optimizer "
                       f"then stepped with (0% when they are cleared); {w.trend()}")
    return None


def probabilities_to_log_loss(w: Window):
    loss, share = worst(w.by_suffix("probability_inputs/"))
    if share > PROBABILITIES:
        what = ("entries in [0, 1]" if "logits" in loss else "rows that are probability "
                "vectors (in [0, 1], summing to 1)")
        return finding("probabilities fed to a log-loss", share / PROBABILITIES * 10,
                       f"{share:.0%} of {loss}'s input {what}: it expects logits or "
                       f"log-probabilities; {w.trend()}")
    return None


# -- mechanisms ------------------------------------------------------------------------------------
def unnormalised_inputs(w: Window):
    rms, spread = w.median("input_rms_max"), w.median("input_std_spread")
    if w.learning or not (rms > INPUT_RMS or spread > INPUT_SPREAD):
        return None
    return finding("unnormalised inputs", max(rms / INPUT_RMS, spread / INPUT_SPREAD),
                   f"input features reach RMS {rms:.3g}; their standard deviations span "
                   f"{spread:.2g}×; {w.trend()}")


def sites(w: Window, measure: str) -> dict[str, float]:
    return w.by_suffix(f"{measure}/")


def flat_activations(w: Window):
    reached = sites(w, "act_grad")
    name, flat = worst({k: v for k, v in sites(w, "flat").items() if k in reached})
    if flat > FLAT and not w.learning:
        return finding("flat activations", (1 - FLAT) / max(1 - flat, 1e-9), f"{flat:.0%} of "
                       f"{name}'s derivatives are exactly zero, and it is on the gradient's "
                       f"path; {w.trend()}", [name])
    return None


def dead_units(w: Window):
    name, dead = worst(sites(w, "dead"))
    if dead > DEAD:
        return finding("dead units", dead / DEAD, f"{dead:.0%} of {name}'s units have zero "
                       f"derivative on every sample; {w.trend()}", [name])
    return None


def saturated_activations(w: Window):
    name, saturated = worst(sites(w, "saturated"))
    if saturated > SATURATED:
        return finding("saturated activations", saturated / SATURATED, f"{saturated:.0%} of "
                       f"{name}'s derivatives are below 1% of its typical one (input RMS "
                       f"{w.median(f'input_rms/{name}'):.3g}); {w.trend()}", [name])
    return None


def depth_profile(w: Window) -> tuple[float, str, str]:
    """(gradient RMS at the first activation / at the last, first, last) in forward order."""
    grads, order = sites(w, "act_grad"), sites(w, "order")
    ranked = sorted((order[k], k) for k in grads if k in order and grads[k] > 0)
    if len(ranked) < 2:
        return math.nan, "", ""
    first, last = ranked[0][1], ranked[-1][1]
    return grads[first] / grads[last], first, last


def time_profile(w: Window) -> tuple[float, str]:
    """(gradient RMS at a looped activation's first call / at its last call, the site)."""
    first, last = sites(w, "act_grad"), sites(w, "act_grad_last_call")
    ratios = {k: first[k] / last[k] for k in last if k in first and last[k] > 0}
    name, _ = worst({k: abs(math.log10(max(v, 1e-30))) for k, v in ratios.items()})
    return (ratios[name], name) if name else (math.nan, "")


def vanishing(w: Window):
    if w.learning:
        return None
    depth, first, last = depth_profile(w)
    over_time, looped = time_profile(w)
    if depth < VANISHING:
        return finding("vanishing gradients", VANISHING / depth, f"the gradient reaching "
                       f"{first} is {depth:.1e} × the gradient reaching {last}; {w.trend()}",
                       [first])
    if over_time < VANISHING:
        return finding("vanishing gradients", VANISHING / over_time, f"the gradient reaching "
                       f"{looped}'s first time step is {over_time:.1e} × its last's; "
                       f"{w.trend()}", [looped])
    return None


def exploding(w: Window):
    depth, first, last = depth_profile(w)
    over_time, looped = time_profile(w)
    norms = w.values("grad_norm")
    early = [r["grad_norm"] for r in w.all[:10] if "grad_norm" in r]
    growth = float(np.median(norms[-10:]) / max(np.median(early), 1e-30)) if len(norms) and \
        early else math.nan
    if w.learning:
        return None
    if depth > EXPLODING:
        return finding("exploding gradients", depth / EXPLODING, f"the gradient reaching "
                       f"{first} is {depth:.1e} × the gradient reaching {last}; {w.trend()}",
                       [first])
    if over_time > EXPLODING:
        return finding("exploding gradients", over_time / EXPLODING, f"the gradient reaching "
                       f"{looped}'s first time step is {over_time:.1e} × its last's; "
                       f"{w.trend()}", [looped])
    if growth > GROWTH:
        return finding("exploding gradients", growth / GROWTH, f"the gradient norm grew "
                       f"{growth:.1e}× since the first steps; {w.trend()}")
    return None


# -- dynamics of the step --------------------------------------------------------------------------
def step_too_large(w: Window):
    sharpness, limit = w.median("lr_lambda_max"), w.median("stability_limit")
    lag, spread = w.detrended()
    if w.learning:
        return None
    if sharpness > limit:
        return finding("step too large", sharpness / limit, f"lr·λ_max = {sharpness:.3g} > "
                       f"{limit:.3g}, the stability limit; {w.trend()}")
    if lag < BOUNCING and spread > SWING:
        return finding("step too large", lag / BOUNCING, f"the loss bounces step to step "
                       f"(lag-1 autocorrelation {lag:.2f}, swings {spread:.0%} of its level); "
                       f"{w.trend()}")
    return None


def oscillating(w: Window):
    lag, spread = w.detrended()
    if w.learning or not (lag > WAVES and spread > SWING):
        return None
    return finding("oscillating loss", spread / SWING, f"the loss swings in waves over several "
                   f"steps (lag-1 autocorrelation {lag:.2f} after the trend is removed, spread "
                   f"{spread:.0%} of its level); {w.trend()}")


# -- slow or noisy learning, when no mechanism explains it ----------------------------------------
def signal(w: Window) -> tuple[float, float]:
    """(mean cosine of consecutive gradients, its t statistic against 0)."""
    cosines = w.values("grad_cosine")
    if len(cosines) < 3:
        return math.nan, math.nan
    error = cosines.std(ddof=1) / math.sqrt(len(cosines))
    mean = float(cosines.mean())
    return mean, mean / error if error > 0 else math.copysign(math.inf, mean)


def ill_conditioned(w: Window):
    low, high = w.median("lambda_min"), w.median("lambda_max")
    sharpness, limit = w.median("lr_lambda_max"), w.median("stability_limit")
    if w.decrease > 0.5:
        return None
    if low > 0 and high / low > ILL_CONDITIONED:
        return finding("ill-conditioned", high / low / ILL_CONDITIONED, f"Hessian κ ≥ "
                       f"λ_max/λ_min = {high:.3g}/{low:.3g} = {high / low:.3g}; {w.trend()}")
    return None


def learning_rate_too_small(w: Window):
    cosine, t = signal(w)
    update = w.median("update_ratio")
    sharpness, limit = w.median("lr_lambda_max"), w.median("stability_limit")
    if not (w.decrease > 0 and cosine > CONSISTENT):
        return None
    if sharpness / limit < SMALL_STEP or (not math.isfinite(sharpness) and update < TINY_UPDATE):
        return finding("learning rate too small", CONSISTENT / max(1 - cosine, 1e-3),
                       f"consecutive gradients agree (cosine {cosine:.2f}) and each step moves "
                       f"the weights by {update:.1e} of their norm"
                       + (f", lr·λ_max = {sharpness:.2g}, far below the limit {limit:.3g}"
                          if math.isfinite(sharpness) else "") + f"; {w.trend()}")
    return None


def no_signal(w: Window):
    cosine, t = signal(w)
    gain = w.input_gain
    if w.learning or not t < SIGNIFICANT or gain > INPUT_GAIN:
        return None
    return finding("no gradient signal", SIGNIFICANT / max(t, 0.2), f"consecutive gradients are "
                   f"uncorrelated (mean cosine {cosine:.2f}, t = {t:.1f} against 0): the batch "
                   f"gradient is noise; {w.trend()}")


def low_snr(w: Window):
    cosine, t = signal(w)
    snr = w.median("batch_snr")
    if w.learning and w.decrease > 0.3 or not (cosine < NOISY):
        return None
    return finding("low SNR", NOISY / max(cosine, 0.01), f"consecutive gradients barely agree "
                   f"(mean cosine {cosine:.2f}; batch SNR {snr:.2g} on "
                   f"{w.median('noise_coverage'):.0%} of the parameters); {w.trend()}")
