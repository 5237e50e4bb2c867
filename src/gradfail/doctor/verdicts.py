"""From measured quantities to named failures, each with its evidence, a confidence and the
remedy that gradfail's own experiments showed to work.

The rules read medians over the recent window of the history. Each rule that fires gives a
verdict whose confidence grows with how far past its threshold the evidence lies (0.5 at the
threshold, 1 an order of magnitude beyond); "healthy" is named when none fires and the loss
falls. The thresholds are the constants below, set on the failure zoo's seed 0
(gradfail.doctor.zoo); two rules were changed after seeds 1 and 2 showed errors (no signal vs
low SNR became a significance test of the mean batch-SNR estimate, at the conventional two
standard errors, instead of a threshold on its median; a step too large needs a stalled run,
not merely a non-decreasing loss, as a converged run's loss is flat too). Seeds 3 and on are
the held-out validation.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np

VERDICTS = ("no gradient signal", "low SNR", "ill-conditioned", "flat activations",
            "vanishing gradients", "exploding gradients", "dead units", "step too large",
            "healthy")

SIGNIFICANT = 2.0  # signal: the window's mean batch-SNR estimate is 2 standard errors above 0
LOW_SNR_BATCH_SNR = 10.0
STALLED = 0.05  # relative loss decrease over the window below this, and
LEARNED = 0.2  # progress since the start below this: not learning
FLAT = 0.9  # fraction of zero-derivative activations (measured, and at a N(0, 1) probe)
SATURATED = 0.5
DEAD = 0.5
VANISHING = 1e-2  # first layer's gradient norm over the last layer's
EXPLODING = 1e2
ILL_CONDITIONED = 1e3  # λ_max / λ_min with λ_min > 0

REMEDIES = {
    "no gradient signal": "the gradient carries almost no information about the target "
                          "(parity, §2, Theorem 1): change the representation or add "
                          "intermediate supervision; more steps will not help",
    "low SNR": "the end-to-end gradient is mostly noise (§3, Figure 5): decompose the loss "
               "with intermediate targets, or use a larger batch",
    "ill-conditioned": "precondition: whiten the inputs or use an adaptive method (§4: whitened "
                       "convolution, Adam)",
    "flat activations": "the activation's derivative is zero where it matters (§5): use a "
                        "smooth surrogate or a forward-only update rule",
    "vanishing gradients": "ReLU with He initialisation, batch norm or residual connections "
                           "(the depth experiment)",
    "exploding gradients": "clip the gradient norm and lower the step (the exploding_rnn "
                           "experiment); check the initialisation scale",
    "dead units": "lower the learning rate, initialise biases at zero (He), or use LeakyReLU",
    "step too large": "lower the learning rate below 2/λ_max, or warm it up",
    "healthy": "nothing to fix",
}


@dataclass(frozen=True)
class Verdict:
    name: str
    confidence: float
    evidence: str
    remedy: str


def confidence(ratio: float) -> float:
    """0.5 at a threshold (ratio 1), 1.0 at ten times past it."""
    if not math.isfinite(ratio):
        return 1.0
    return float(np.clip(0.5 + 0.5 * math.log10(max(ratio, 1.0)), 0.5, 1.0))


def recent(history: list[dict], key: str, window: int) -> float:
    """The median of a quantity's finite values over the last `window` steps that measured it
    (a diverged run is judged on what was measured before it diverged)."""
    values = [r[key] for r in history if key in r and r[key] is not None
              and math.isfinite(r[key])][-window:]
    return float(np.median(values)) if values else math.nan


def worst(history: list[dict], prefix: str, window: int) -> tuple[str, float]:
    keys = {k for r in history[-window:] for k in r if k.startswith(prefix)}
    found = {k.removeprefix(prefix): recent(history, k, window) for k in keys}
    return max(found.items(), key=lambda kv: kv[1], default=("", math.nan))


def signal_evidence(history: list[dict], window: int) -> tuple[float, float, float]:
    """(mean, standard error, t) of the batch-SNR estimates over the window: each step's
    estimate is unbiased (negative when the noise hides the signal), so their mean is too, and
    t says whether the gradient holds any signal at all."""
    values = np.array([r["batch_snr"] for r in history[-window:] if "batch_snr" in r
                       and math.isfinite(r["batch_snr"])])
    if len(values) < 3:
        return math.nan, math.nan, math.nan
    mean, error = float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))
    return mean, error, mean / error if error > 0 else math.copysign(math.inf, mean)


def progress(history: list[dict], window: int) -> float:
    """1 − (recent loss)/(initial loss): how far the run has come since its first steps."""
    start = np.median([r["loss"] for r in history[:10]])
    now = np.median([r["loss"] for r in history[-max(window // 3, 1):]])
    return float(1 - now / max(abs(start), 1e-12)) if np.isfinite(now) else -math.inf


def loss_decrease(history: list[dict], window: int) -> float:
    """Relative decrease of the loss: median of the window's first third vs its last third."""
    losses = np.array([r["loss"] for r in history[-window:]], dtype=float)
    third = max(len(losses) // 3, 1)
    first, last = np.median(losses[:third]), np.median(losses[-third:])
    if not np.isfinite(last):
        return -math.inf
    return float((first - last) / max(abs(first), 1e-12))


def diagnose(history: list[dict], layers: dict, window: int = 50) -> list[Verdict]:
    """The verdicts the history supports, most confident first (always at least one)."""
    if not history:
        return [Verdict("healthy", 0.0, "no step recorded yet", REMEDIES["healthy"])]
    window = min(window, len(history))
    found: list[Verdict] = []

    def name(verdict: str, ratio: float, evidence: str) -> None:
        found.append(Verdict(verdict, confidence(ratio), evidence, REMEDIES[verdict]))

    decrease, overall = loss_decrease(history, window), progress(history, window)
    stalled = decrease < STALLED and overall < LEARNED
    finite = all(math.isfinite(r["loss"]) for r in history[-window:])
    trend = ("the loss diverged" if not finite else f"loss fell {decrease:.0%} over the last "
             f"{window} steps, {overall:.0%} since the start")

    names = list(layers)
    depth = math.nan
    if len(names) >= 2 and finite:  # a diverged run's gradients say nothing about depth
        first, last = (recent(history, f"grad_norm/{n}", window) for n in (names[0],
                                                                           names[-1]))
        depth = first / last if last > 0 else (math.inf if first > 0 else math.nan)
        dead_explain = worst(history, "dead/", window)[1] > DEAD  # dead units stop gradients
        if depth < VANISHING and not dead_explain:
            name("vanishing gradients", VANISHING / max(depth, 1e-300),
                 f"the first layer's gradient norm is {depth:.1e} × the last's "
                 f"({names[0]} vs {names[-1]}); {trend}")
        if depth > EXPLODING:
            name("exploding gradients", depth / EXPLODING, f"the first layer's gradient norm "
                 f"is {depth:.1e} × the last's ({names[0]} vs {names[-1]}); {trend}")
    sharpness, limit = recent(history, "lr_lambda_max", window), recent(
        history, "stability_limit", window)
    if sharpness > limit and (stalled or not finite) and not depth > EXPLODING:
        name("step too large", sharpness / limit, f"lr·λ_max = {sharpness:.3g} > "
             f"{limit:.3g}, the stability limit; {trend}")
    flat_layer, flat = worst(history, "flat/", window)
    saturated_layer, saturated = worst(history, "saturated/", window)
    flat_function = recent(history, f"probe_flat/{flat_layer}", window) > FLAT
    if flat > FLAT and flat_function:
        name("flat activations", (1 - FLAT) / max(1 - flat, 1e-9), f"{flat:.0%} of {flat_layer}"
             f"'s derivatives are exactly zero; {trend}")
    elif saturated > SATURATED:
        name("flat activations", saturated / SATURATED, f"{saturated:.0%} of "
             f"{saturated_layer}'s derivatives are below 0.01 (saturated); {trend}")
    dead_layer, dead = worst(history, "dead/", window)
    if dead > DEAD and not flat_function:  # (dead_units, below)
        name("dead units", dead / DEAD, f"{dead:.0%} of {dead_layer}'s units have zero "
             f"derivative on every sample; {trend}")
    low, high = recent(history, "lambda_min", window), recent(history, "lambda_max", window)
    dead_units = dead > DEAD and not flat_function  # a singular Hessian, not an ill-posed one
    conditioned = dead_units or not (low > 0 and high / low > ILL_CONDITIONED)
    if not conditioned:
        name("ill-conditioned", high / low / ILL_CONDITIONED, f"Hessian κ ≥ λ_max/λ_min = "
             f"{high:.3g}/{low:.3g} = {high / low:.3g}; {trend}")
    # a noisy gradient is a failure of its own only when no mechanism above explains it
    explained = not conditioned or dead_units or flat_function or depth < VANISHING
    batch_snr = recent(history, "batch_snr", window)
    mean_snr, snr_error, evidence = signal_evidence(history, window)
    if stalled and not explained and evidence < SIGNIFICANT:
        name("no gradient signal", SIGNIFICANT / max(evidence, 1e-9),
             f"batch SNR ‖G‖²/(tr Σ/B) = {mean_snr:.2g} ± {snr_error:.2g} over the window, not "
             f"significantly above 0 (t = {evidence:.1f}): the batch gradient is noise; {trend}")
    elif stalled and not explained and batch_snr < LOW_SNR_BATCH_SNR:
        name("low SNR", LOW_SNR_BATCH_SNR / batch_snr, f"batch SNR = {batch_snr:.2g}; "
             f"{trend}")
    if not found and not finite:
        name("step too large", 1.0, f"{trend}, with no depth or activation signature")
    if not found:
        found.append(Verdict("healthy", confidence(max(decrease / STALLED, 1.0)) if not stalled
                             else 0.5, trend + ("" if not stalled else
                                                "; stalled, but no failure signature measured"),
                             REMEDIES["healthy"]))
    return sorted(found, key=lambda v: -v.confidence)


def print_table(found: list[Verdict], name: str, steps: int, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"gradfail doctor: {name} ({steps} steps)", show_lines=True)
    for column in ("verdict", "confidence", "evidence", "remedy"):
        table.add_column(column)
    for verdict in found:
        table.add_row(verdict.name, f"{verdict.confidence:.2f}", verdict.evidence,
                      verdict.remedy)
    (console or Console()).print(table)


def save(store, name: str, history: list[dict], found: list[Verdict]) -> int:
    """One run of experiment "doctor" in the store: the quantities as metrics, the verdicts as
    its result."""
    import time

    import torch

    from gradfail.runner import provenance
    from gradfail.store import RunIdentity

    identity = RunIdentity("doctor", 1, json.dumps({"name": name, "at": time.time()}), 0, 1,
                           "cpu")
    run_id = store.begin_run(identity, "default", provenance(torch.device("cpu")))
    metrics = [(key, record["step"], 0, float(value)) for record in history
               for key, value in record.items() if key != "step"]
    store.finish_run(run_id, "done", 0.0, {"verdicts": [asdict(v) for v in found]},
                     metrics=metrics)
    return run_id
