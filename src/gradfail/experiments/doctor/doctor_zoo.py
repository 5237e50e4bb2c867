"""The doctor on the failure zoo: does it name each of gradfail's failures in a plain PyTorch run?

gradfail.doctor watches a user's training loop and names the failure it sees. Existing tools name
none (Cockpit shows 19 gauges and leaves the reading to the user; PyHessian measures curvature
only; WeightWatcher never sees a gradient) or name them by thresholds on Keras runs with no
published calibration (SageMaker Debugger's rules, AutoTrainer). Here it is calibrated: every
case of the zoo (gradfail.doctor.zoo: parity at small and large d, end to end vs decomposed at
k = 3, raw vs whitened curves, a flat vs a smooth link, deep sigmoid, He-initialised ReLU and
chaotic tanh nets, dead ReLUs, a step far past 2/λ_max and the same net at a stable step) is
trained under the doctor, and the named verdict is scored against the case's label: a
confusion matrix, precision and recall per verdict, and the steps until the doctor first named
the label (checked every `check_every` steps). The zoo is held out by configuration: the claims
are judged on the configurations the rules were not set on. Its cases are gradfail's own
failures, the easy kind of held-out; the benchmark of independent programs (doctor_bench) is
the hard kind.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, NonNegativeInt, PositiveInt, field_validator

from gradfail.doctor import zoo
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.maths.statistics import CONFIDENCE, Interval, fraction_interval
from gradfail.plotting import confusion_matrix, new_figure


class DoctorZooConfig(Config):
    """The zoo is held out by configuration: the rules were set on its "dev" cases only, so the
    claims are judged on the "heldout" ones by default (gradfail.doctor.zoo)."""

    cases: list[str] = Field(default_factory=lambda: [name for name, c in zoo.CASES.items()
                                                      if c.split == "heldout"], min_length=1)
    first_seed: NonNegativeInt = Field(3, description="first zoo seed")
    check_every: PositiveInt = Field(10, description="steps between the doctor's checks")

    @field_validator("cases")
    @classmethod
    def _cases(cls, cases: list[str]) -> list[str]:
        unknown = [name for name in cases if name not in zoo.CASES]
        if unknown:
            raise ValueError(f"unknown zoo case {unknown[0]!r}; cases: {', '.join(zoo.CASES)}")
        return cases


def run(config: DoctorZooConfig, ctx: RunContext) -> dict:
    seeds = range(config.first_seed + ctx.seed, config.first_seed + ctx.seed + ctx.n_seeds)
    results = []
    with ctx.track("the doctor on the failure zoo", len(config.cases) * len(seeds)) as advance:
        for name in config.cases:
            for seed in seeds:
                results.append(ctx.part(f"{name}/{seed}", lambda n=name, s=seed: zoo.run_case(
                    zoo.CASES[n], s, check_every=config.check_every)))
                advance(1)
    return zoo.score(results)


# --------------------------------------------------------------------------------------------
# Claims: the doctor's own targets (issue 12), not a paper's.


def verdict_intervals(result: dict, metric: str) -> dict[str, Interval]:
    """Per verdict, the Wilson interval of its precision (runs it was named on that carry its
    label; every verdict ever named) or recall (runs of its label named right)."""
    runs = result["results"]
    verdicts = result["columns"] if metric == "precision" else result["rows"]
    trials = {v: [r["verdict"] == r["label"] for r in runs
                  if (r["verdict"] if metric == "precision" else r["label"]) == v]
              for v in verdicts}
    return {v: fraction_interval(hits) for v, hits in trials.items() if hits}


def lowest(intervals: dict[str, Interval]) -> Interval:
    """The lowest score's interval, from the lowest ends: at or above a threshold when every
    verdict's interval is, below it when one verdict's is."""
    return Interval(min(i.estimate for i in intervals.values()),
                    min(i.low for i in intervals.values()),
                    min(i.high for i in intervals.values()), CONFIDENCE,
                    min(i.n for i in intervals.values()), f"lowest of {len(intervals)} Wilson")


def check_score(result: dict, metric: str) -> Check:
    intervals = verdict_intervals(result, metric)
    if not intervals:
        return Check.not_checked(None, "no verdict was named")
    text = ", ".join(f"{v} {i.estimate:.2f} [{i.low:.2f}, {i.high:.2f}] of {i.n}"
                     for v, i in intervals.items())
    delays = [s["delay"] for s in result["scores"].values() if math.isfinite(s["delay"])]
    worst = min(intervals, key=lambda v: intervals[v].estimate)
    return Check.at_least(lowest(intervals), 0.8, f"{metric} by verdict (runs): {text}; median "
                          f"detection delay {np.median(delays):.0f} steps; lowest {worst}")


def check_precision(config: DoctorZooConfig, result: dict) -> Check:
    return check_score(result, "precision")


def check_recall(config: DoctorZooConfig, result: dict) -> Check:
    return check_score(result, "recall")


def check_healthy(config: DoctorZooConfig, result: dict) -> Check:
    healthy = [r for r in result["results"] if r["label"] == "healthy"]
    if not healthy:
        return Check.not_checked(None, "no healthy case was run")
    missed = sorted({f"{r['case']} (seed {r['seed']}: {r['verdict']})" for r in healthy
                     if r["verdict"] != "healthy"})
    return Check.at_least(fraction_interval([r["verdict"] == "healthy" for r in healthy]), 1.0,
                          f"{sum(r['verdict'] == 'healthy' for r in healthy)} of {len(healthy)} "
                          "healthy runs named healthy" + (f"; missed: {', '.join(missed)}"
                                                          if missed else ""))


WILSON = ("over the runs (seeds of the held-out zoo cases, one case per failure label: the "
          "interval speaks for these configurations, not for unseen programs, which is "
          "doctor_bench's question), Wilson's 95% interval ")
CLAIMS = (
    Claim("the doctor's verdicts are precise", "gradfail's target for the doctor: "
          "precision ≥ 0.8 for every verdict on the zoo; no published tool reports one",
          "every verdict's precision ≥ 0.8 on configurations the rules were not set on",
          check_precision,
          test="per verdict named, the fraction of the runs it was named on that carry its "
               "label; " + WILSON + "of each; holds when every verdict's interval lies at or "
               "above 0.8, fails when one lies below",
          if_fails="a finding: the held-out low-SNR configuration is named \"no gradient "
                   "signal\", a neighbouring verdict; the rules were not refitted to it",
          id="the-doctors-verdicts-are-precise"),
    Claim("the doctor finds every failure", "gradfail's target for the doctor: "
          "recall ≥ 0.8 for every verdict on the zoo",
          "every verdict's recall ≥ 0.8 on configurations the rules were not set on",
          check_recall,
          test="per label, the fraction of its runs the doctor named right; " + WILSON
               + "of each; holds when every label's interval lies at or above 0.8, fails when "
               "one lies below",
          if_fails="a finding: the same held-out low-SNR runs, named \"no gradient signal\" "
                   "instead (see the precision claim); the rules were not refitted to them",
          id="the-doctor-finds-every-failure"),
    Claim("healthy runs are left alone", "gradfail's target for the doctor: "
          "\"healthy\" on every healthy configuration",
          "every healthy-labelled run named healthy", check_healthy,
          test="the fraction of healthy-labelled runs named healthy; " + WILSON + "against "
               "1 (\"every\"): one run named otherwise puts it below 1 and fails the claim; "
               "no finite number of runs can make it hold, so with none missed it is "
               "inconclusive", id="healthy-runs-are-left-alone"),
)


def figures(config: DoctorZooConfig, result: dict) -> dict:
    fig, (ax_matrix, ax_scores) = new_figure(ncols=2, width=6.0, height=4.6)
    confusion_matrix(ax_matrix, result["matrix"], result["rows"], result["columns"],
                     "the case's label", "The doctor on the failure zoo")
    verdicts = list(result["scores"])
    positions = np.arange(len(verdicts))
    for offset, metric in ((-0.2, "precision"), (0.2, "recall")):
        ax_scores.barh(positions + offset, [result["scores"][v][metric] for v in verdicts],
                       height=0.4, label=metric)
    ax_scores.axvline(0.8, color="black", ls=":", lw=1, label="target 0.8")
    ax_scores.set_yticks(positions, verdicts, fontsize=8)
    ax_scores.invert_yaxis()
    ax_scores.set(xlim=(0, 1.05), xlabel="score", title="Precision and recall per verdict")
    ax_scores.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncols=3)
    return {"doctor_zoo": fig}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "doctor_zoo": ("The doctor on the failure zoo: the verdict it gives for each case's label "
                   "(confusion matrix), and each verdict's precision and recall against the 0.8 "
                   "target (dotted)."),
}


def work(config: DoctorZooConfig, seeds: int) -> float:
    """Cost model units: zoo runs, cases × seeds (each its case's ~300 steps under the doctor)."""
    return float(len(config.cases) * seeds)


EXPERIMENT = Experiment(
    name="doctor_zoo",
    section="gradfail.doctor",
    title="The doctor names the failure: validation on the failure zoo",
    version=3,
    config_class=DoctorZooConfig,
    scales={"quick": {}, "default": {}, "paper": {}},
    seeds={"quick": 1, "default": 3, "paper": 10},
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
