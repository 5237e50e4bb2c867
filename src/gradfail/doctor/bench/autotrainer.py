"""The benchmark's baseline: AutoTrainer's published detection rules (Zhang, Zhai, Li & Liu,
"AUTOTRAINER: An Automatic DNN Training Problem Detection and Repair System", ICSE 2021, §III-B
and its released monitor), applied to the quantities the doctor recorded on the same run.

AutoTrainer checks once per epoch, on Keras logs. Here it checks at the doctor's checks, with
its default parameters: vanishing when ‖g_first‖/‖g_last‖ < β₁ = 1e-3 and ‖g_first‖ < β₂ = 1e-4;
exploding when that ratio exceeds β₃ = 70, and on any NaN or infinity; dying ReLU when at least
γ = 0.7 of the gradient entries are 0; these three only when training has not converged
(accuracy never reached Θ = 0.7, or never rose by δ = 0.01 from one check to the next);
otherwise unstable when at least η = 0.2 of the checks show an accuracy swing of ζ = 0.03 or
more between neighbouring extrema; slow convergence when accuracy never rises by δ. Loss and
accuracy features are judged only after 30% of the run, as AutoTrainer's judgment point.
Accuracy is the batch accuracy the doctor read from a classification loss; where the loss is
not a classification loss, the share of the initial loss removed, 1 − L/L₀, stands in for it.
Issues map to the doctor's names: NaN explode → diverged, explode → exploding gradients,
vanish → vanishing gradients, relu → dead units, slow convergence → learning rate too small,
unstable → oscillating loss.
"""

from __future__ import annotations

import math

import numpy as np

BETA_1, BETA_2, BETA_3 = 1e-3, 1e-4, 70.0
GAMMA, ZETA, ETA, DELTA, THETA = 0.7, 0.03, 0.2, 0.01, 0.7
JUDGMENT_POINT = 0.3


def accuracy_series(history: list[dict], checks: list[int]) -> list[float]:
    """At each check, the latest batch accuracy, or 1 − L/L₀ (medians over the last 10 steps)."""
    by_step = {r["step"]: i for i, r in enumerate(history)}
    classify = any("accuracy" in r for r in history)
    start = np.median([r["loss"] for r in history[:10]])
    fractions = []
    for step in checks:
        upto = history[:by_step[step] + 1]
        if classify:
            values = [r["accuracy"] for r in upto[-10:] if "accuracy" in r] or [
                r["accuracy"] for r in upto if "accuracy" in r][-1:]
        else:
            values = [1 - r["loss"] / max(abs(start), 1e-12) for r in upto[-10:]]
        fractions.append(float(np.clip(np.median(values), 0, 1)) if values and np.isfinite(
            np.median(values)) else 0.0)
    return fractions


def oscillates(accuracies: list[float]) -> bool:
    """AutoTrainer's unstable-training judgment on an accuracy series."""
    peaks = [a for i, a in enumerate(accuracies[1:-1], 1)
             if a >= accuracies[i - 1] and a >= accuracies[i + 1]]
    troughs = [a for i, a in enumerate(accuracies[1:-1], 1)
               if a <= accuracies[i - 1] and a <= accuracies[i + 1]]
    swings = sum(p - t >= ZETA for p, t in zip(peaks, troughs))
    return swings >= ETA * len(accuracies)


def gradient_issue(record: dict, layers: list[str]) -> str | None:
    norms = [record.get(f"grad_norm/{name}") for name in layers]
    norms = [n for n in norms if n is not None]
    if len(norms) < 2 or not norms[-1] > 0:
        return None
    ratio = norms[0] / norms[-1]
    if ratio < BETA_1 and norms[0] < BETA_2:
        return "vanishing gradients"
    if ratio > BETA_3:
        return "exploding gradients"
    return None


def diagnose(history: list[dict], checks: list[int], layers: list[str]) -> list[str | None]:
    """AutoTrainer's issue at each check (None: no issue), its features accumulated as in its
    monitor (an issue once seen counts from then on)."""
    steps = len(history)
    accuracies = accuracy_series(history, checks)
    by_step = {r["step"]: i for i, r in enumerate(history)}
    seen: set[str] = set()
    issues = []
    for k, step in enumerate(checks):
        upto = history[:by_step[step] + 1]
        if any(not math.isfinite(r["loss"]) or any(key.startswith("nonfinite/") for key in r)
               for r in upto):
            issues.append("diverged")
            continue
        issue = gradient_issue(upto[-1], layers)
        if issue:
            seen.add(issue)
        zeros = [r["zero_grad_fraction"] for r in upto if "zero_grad_fraction" in r]
        if zeros and zeros[-1] >= GAMMA:
            seen.add("dead units")
        issue = None
        if len(upto) >= JUDGMENT_POINT * steps:
            so_far = accuracies[:k + 1]
            rises = np.diff(so_far)
            slow = len(so_far) > 1 and float(rises.max()) < DELTA
            unconverged = max(so_far) < THETA
            if unconverged or slow:
                issue = next((name for name in ("dead units", "exploding gradients",
                                                "vanishing gradients") if name in seen),
                             "learning rate too small" if slow else None)
            elif oscillates(so_far):
                issue = "oscillating loss"
        issues.append(issue)
    return issues
