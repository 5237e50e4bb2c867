"""Scoring the benchmark, the same rule for every program.

A program is named right when the top verdict at the end of its run, from the doctor that
watched most of its steps, is its label. A healthy program is left alone when no verdict is
raised at any check after a warm-up of 10% of its steps. Per verdict: precision and recall with
Wilson 95% intervals, the onset step of the label's verdict (detection delay), and the averages
over verdicts with bootstrap 95% intervals (resampling programs). The baseline (AutoTrainer's
rules, gradfail.doctor.bench.autotrainer) is scored the same way on the same runs.
"""

from __future__ import annotations

import math

import numpy as np

from gradfail.doctor.bench import autotrainer
from gradfail.doctor.rules import VERDICTS
from gradfail.maths.statistics import wilson_interval

WARM_UP = 0.1


def main_doctor(result: dict) -> int:
    """The index of the doctor that watched the most steps (the last of equals)."""
    steps = [d["steps"] for d in result["doctors"]]
    return max(range(len(steps)), key=lambda i: (steps[i], i))


def outcome(result: dict) -> dict:
    """What the doctor and the baseline said on one program's run."""
    program = {"program": result["program"], "label": result["label"], "split": result["split"]}
    if "error" in result:
        return program | {"named": "crash", "baseline": "crash", "error": result["error"],
                          "false_alarms": 0, "baseline_false_alarms": 0}
    main = main_doctor(result)
    doctor = result["doctors"][main]
    top = doctor["verdicts"][0]
    onset = next((v["onset_step"] for v in doctor["verdicts"] if v["name"] == result["label"]),
                 None)
    alarms = baseline_alarms = 0
    baseline_final = "healthy"
    for index, (document, history) in enumerate(zip(result["doctors"], result["histories"],
                                                   strict=True)):
        after = WARM_UP * document["steps"]
        alarms += sum(bool(c["raised"]) for c in document["history"] if c["step"] > after)
        checks = [c["step"] for c in document["history"]]
        layers = [k.removeprefix("grad_norm/") for k in history[0] if
                  k.startswith("grad_norm/")] if history else []
        issues = autotrainer.diagnose(history, checks, layers) if history else []
        baseline_alarms += sum(bool(i) for s, i in zip(checks, issues) if s > after)
        if index == main and issues:
            baseline_final = issues[-1] or "healthy"
    overhead = result["wall_s"] / result["plain_s"] if result.get("plain_s", 0) > 0 else math.nan
    return program | {"named": top["name"], "confidence": top["confidence"], "onset": onset,
                      "evidence": top["evidence"], "steps": doctor["steps"],
                      "false_alarms": alarms, "baseline": baseline_final,
                      "baseline_false_alarms": baseline_alarms, "overhead": overhead}


def interval(values: list[bool]) -> dict:
    if not values:
        return {"value": math.nan, "low": math.nan, "high": math.nan, "n": 0}
    value, low, high, n = wilson_interval(values)
    return {"value": value, "low": low, "high": high, "n": n}


def per_verdict(outcomes: list[dict], key: str) -> dict:
    labels = [v for v in VERDICTS if any(o["label"] == v for o in outcomes)]
    scores = {}
    for verdict in labels:
        named = [o for o in outcomes if o[key] == verdict]
        labelled = [o for o in outcomes if o["label"] == verdict]
        delays = [o["onset"] for o in labelled if o.get("onset") is not None]
        scores[verdict] = {"precision": interval([o["label"] == verdict for o in named]),
                           "recall": interval([o[key] == verdict for o in labelled]),
                           "delay": float(np.median(delays)) if delays else math.nan}
    return scores


def averages(outcomes: list[dict], key: str, resamples: int = 1000) -> dict:
    """Precision and recall averaged over the labels present (a verdict never named counts
    with precision 0), each with a bootstrap 95% interval over programs."""
    def macro(sample: list[dict]) -> tuple[float, float]:
        labels = sorted({o["label"] for o in sample})
        precision = [np.mean([o["label"] == v for o in sample if o[key] == v])
                     if any(o[key] == v for o in sample) else 0.0 for v in labels]
        recall = [np.mean([o[key] == v for o in sample if o["label"] == v]) for v in labels]
        return float(np.mean(precision)), float(np.mean(recall))
    if not outcomes:
        return {}
    point = macro(outcomes)
    rng = np.random.default_rng(0)
    draws = np.array([macro([outcomes[i] for i in rng.integers(len(outcomes),
                                                               size=len(outcomes))])
                      for _ in range(resamples)])
    return {name: {"value": point[i], "low": float(np.quantile(draws[:, i], 0.025)),
                   "high": float(np.quantile(draws[:, i], 0.975))}
            for i, name in enumerate(("precision", "recall"))}


def confusion(outcomes: list[dict], key: str) -> dict:
    rows = [v for v in VERDICTS if any(o["label"] == v for o in outcomes)]
    columns = rows + sorted({o[key] for o in outcomes} - set(rows),
                            key=lambda v: VERDICTS.index(v) if v in VERDICTS else 99)
    return {"rows": rows, "columns": columns,
            "matrix": [[sum(o["label"] == r and o[key] == c for o in outcomes)
                        for c in columns] for r in rows]}


def score(outcomes: list[dict]) -> dict:
    """The benchmark's figures for the doctor and the baseline, from `outcome`s."""
    healthy = [o for o in outcomes if o["label"] == "healthy"]
    overheads = [o["overhead"] for o in outcomes if math.isfinite(o.get("overhead", math.nan))]
    scores = {"outcomes": outcomes, "crashes": [o["program"] for o in outcomes
                                                if o["named"] == "crash"],
              "overhead": {"median": float(np.median(overheads)) if overheads else math.nan,
                           "max": float(max(overheads)) if overheads else math.nan,
                           "programs": len(overheads)}}
    for who, key, alarms in (("doctor", "named", "false_alarms"),
                             ("baseline", "baseline", "baseline_false_alarms")):
        scores[who] = {"per_verdict": per_verdict(outcomes, key),
                       "average": averages(outcomes, key), "confusion": confusion(outcomes, key),
                       "healthy_left_alone": interval([o[alarms] == 0 for o in healthy]),
                       "false_alarms": {o["program"]: o[alarms] for o in healthy}}
    return scores
