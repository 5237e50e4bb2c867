"""The benchmark's figures as terminal tables: the doctor beside the AutoTrainer baseline."""

from __future__ import annotations

import math

SHORT = {"no gradient signal": "no signal", "ill-conditioned": "ill-cond.",
         "flat activations": "flat", "vanishing gradients": "vanish.",
         "exploding gradients": "explod.", "dead units": "dead", "step too large": "step",
         "saturated activations": "satur.", "gradients accumulate": "accum.",
         "probabilities fed to a log-loss": "probs", "unnormalised inputs": "inputs",
         "oscillating loss": "oscill.", "learning rate too small": "lr small",
         "diverged": "diverged", "low SNR": "low SNR", "healthy": "healthy"}


def fraction(score: dict) -> str:
    if not score or score.get("n", 1) == 0 or not math.isfinite(score["value"]):
        return "–"
    return f"{score['value']:.2f} [{score['low']:.2f}, {score['high']:.2f}]"


def print_bench(scores: dict, title: str, console) -> None:
    from rich.table import Table

    scores = Table(title=f"{title}: per verdict, doctor vs AutoTrainer's rules "
                         "(Wilson 95% intervals)")
    for column in ("verdict", "programs", "doctor precision", "doctor recall",
                   "AutoTrainer precision", "AutoTrainer recall", "onset (median step)"):
        scores.add_column(column)
    for verdict, s in scores["doctor"]["per_verdict"].items():
        b = scores["baseline"]["per_verdict"][verdict]
        scores.add_row(verdict, str(s["recall"]["n"]), fraction(s["precision"]),
                       fraction(s["recall"]), fraction(b["precision"]), fraction(b["recall"]),
                       "–" if not math.isfinite(s["delay"]) else f"{s['delay']:.0f}")
    for who in ("doctor", "baseline"):
        average = scores[who]["average"]
        scores.add_row(f"average ({'AutoTrainer' if who == 'baseline' else who})", "",
                       *((fraction(average["precision"] | {"n": 1}),
                          fraction(average["recall"] | {"n": 1}), "", "") if who == "doctor"
                         else ("", "", fraction(average["precision"] | {"n": 1}),
                               fraction(average["recall"] | {"n": 1}))), "")
    console.print(scores)
    confusion = scores["doctor"]["confusion"]
    matrix = Table(title="The doctor: labelled (rows) vs named (columns)")
    matrix.add_column("label")
    for column in confusion["columns"]:
        matrix.add_column(SHORT.get(column, column), justify="right")
    for row, counts in zip(confusion["rows"], confusion["matrix"], strict=True):
        matrix.add_row(row, *(str(c) if c else "·" for c in counts))
    console.print(matrix)
    misses = Table(title="Programs named wrong, and healthy programs with false alarms")
    for column in ("program", "label", "named", "alarms after warm-up", "evidence"):
        misses.add_column(column)
    for o in scores["outcomes"]:
        if o["named"] != o["label"] or (o["label"] == "healthy" and o["false_alarms"]):
            misses.add_row(o["program"], o["label"], o["named"], str(o["false_alarms"]),
                           o.get("evidence", o.get("error", ""))[:160])
    console.print(misses)
    left = scores["doctor"]["healthy_left_alone"]
    base = scores["baseline"]["healthy_left_alone"]
    console.print(f"healthy programs left alone after warm-up: doctor {fraction(left)}, "
                  f"AutoTrainer {fraction(base)}; crashes: {len(scores['crashes'])}; overhead "
                  f"(script under the doctor / plain): median ×{scores['overhead']['median']:.2f},"
                  f" max ×{scores['overhead']['max']:.2f} over {scores['overhead']['programs']} "
                  "programs")


def print_zoo(scores: dict, seeds: str, console) -> None:
    """The doctor on the failure zoo: the confusion matrix, then precision, recall and delay."""
    from rich.table import Table

    matrix = Table(title=f"The doctor on the failure zoo ({len(scores['rows'])} labels × "
                         f"{seeds}): labelled (rows) vs named (columns)")
    matrix.add_column("label")
    for column in scores["columns"]:
        matrix.add_column(SHORT.get(column, column), justify="right")
    for row, counts in zip(scores["rows"], scores["matrix"], strict=True):
        matrix.add_row(row, *map(str, counts))
    per_verdict = Table(title="Per verdict")
    for column in ("verdict", "cases", "precision", "recall", "median delay (steps)"):
        per_verdict.add_column(column)
    for verdict, found in scores["scores"].items():
        per_verdict.add_row(verdict, str(found["cases"]), f"{found['precision']:.2f}",
                            f"{found['recall']:.2f}", f"{found['delay']:.0f}")
    console.print(matrix)
    console.print(per_verdict)
