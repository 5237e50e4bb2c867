"""doctor_zoo's claims judge constructed runs by Wilson intervals: every verdict's precision and
recall at or above 0.8, and "every healthy run named healthy" can only fail or be inconclusive."""

from __future__ import annotations

import pytest

from gradfail import registry
from gradfail.doctor import zoo
from gradfail.experiments.doctor import doctor_zoo as dz

CONFIG = registry.get("doctor_zoo").config("quick")


def runs(named: dict[tuple[str, str], int]) -> dict:
    """Scored runs: `count` runs of each (label, verdict named)."""
    return zoo.score([{"case": label, "label": label, "seed": seed, "verdict": verdict,
                       "detected_at": 10 if verdict == label else None}
                      for (label, verdict), count in named.items() for seed in range(count)])


def test_many_right_runs_hold_one_wrong_verdict_fails_and_few_runs_are_inconclusive():
    right = {("healthy", "healthy"): 30, ("diverged", "diverged"): 30}
    assert dz.check_recall(CONFIG, runs(right)).verdict == "holds"
    assert dz.check_precision(CONFIG, runs(right)).verdict == "holds"
    missed = right | {("low SNR", "healthy"): 30}
    found = dz.check_recall(CONFIG, runs(missed))
    assert found.verdict == "fails" and found.measured == 0 and "lowest low SNR" in found.detail
    assert dz.check_recall(CONFIG, runs({("healthy", "healthy"): 3})).verdict == "inconclusive"


def test_a_verdict_named_on_no_run_of_its_label_counts_against_precision():
    found = runs({("healthy", "healthy"): 30, ("diverged", "exploding gradients"): 30})
    check = dz.check_precision(CONFIG, found)
    assert check.verdict == "fails" and "exploding gradients 0.00" in check.detail


@pytest.mark.parametrize("named, verdict", [
    ({("healthy", "healthy"): 40}, "inconclusive"),  # "every" can never be confirmed
    ({("healthy", "healthy"): 39, ("healthy", "low SNR"): 1}, "fails"),
])
def test_every_healthy_run_named_healthy_can_only_be_refuted(named, verdict):
    assert dz.check_healthy(CONFIG, runs(named)).verdict == verdict


def test_the_zoo_tables_print_a_matrix_and_each_verdicts_scores():
    from rich.console import Console

    from gradfail.doctor.bench.tables import print_zoo

    scores = {"rows": ["exploding gradient", "healthy"], "columns": ["exploding gradient", "none"],
              "matrix": [[2, 0], [0, 2]],
              "scores": {"exploding gradient": {"cases": 2, "precision": 1.0, "recall": 1.0,
                                                "delay": 12.0}}}
    console = Console(record=True, width=120)
    print_zoo(scores, "seeds 0-1", console)
    text = console.export_text()
    assert "labelled (rows) vs named (columns)" in text and "Per verdict" in text
    assert "12" in text and text.count("1.00") == 2  # the delay; precision and recall
