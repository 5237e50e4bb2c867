"""The doctor on programs it has never seen: the benchmark of independent training scripts.

The failure zoo (doctor_zoo) validates the doctor on new seeds of the configurations its rules
were set on, the easy kind of held-out. Here every program is an independent plain-PyTorch
training script (gradfail.doctor.bench), written from a one-paragraph description of its failure
by someone who had not read the rules, and run unchanged as `gradfail doctor --json
program.py` on one thread. Its label is justified by a printed measurement of the mechanism and
by its remedy alone making it train. Programs are split by program into a development half,
on which the rules were set, and a held-out half; the default scale runs the held-out half.
A program is named right when the top verdict at the end of its run is its label; a healthy
program is left alone when no verdict is raised after a warm-up of 10% of its steps. The
published rule-based detector AutoTrainer (Zhang et al., ICSE 2021), applied to the same runs,
is the baseline; an independent evaluation of such tools (Humbatova et al., EMSE 2025) found
average recall at most 0.55 and precision at most 0.37.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, PositiveInt, field_validator

from gradfail.doctor import bench
from gradfail.doctor.bench.scoring import score
from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.maths.statistics import Interval
from gradfail.plotting import confusion_matrix, new_figure


class DoctorBenchConfig(Config):
    split: str = Field("all", description="dev (the rules were set on it), heldout, fresh "
                       "(the held-out set written after the first evaluation) or all")
    programs: list[str] = Field(default_factory=list, description="only these programs "
                                "(empty: every program of the split)")
    jobs: PositiveInt = Field(2, le=64, description="programs side by side, one thread each")
    overhead: bool = Field(True, description="also time each program without the doctor")

    @field_validator("split")
    @classmethod
    def _split(cls, split: str) -> str:
        if split not in bench.SPLITS:
            raise ValueError(f"unknown split {split!r}; splits: {', '.join(bench.SPLITS)}")
        return split

    @field_validator("programs")
    @classmethod
    def _programs(cls, names: list[str]) -> list[str]:
        known = {p.name for p in bench.programs()}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValueError(f"unknown benchmark program {unknown[0]!r}")
        return names


def chosen(config: DoctorBenchConfig) -> list[bench.Program]:
    return [p for p in bench.programs(config.split)
            if not config.programs or p.name in config.programs]


def run(config: DoctorBenchConfig, ctx: RunContext) -> dict:
    programs = chosen(config)
    missing = [p for p in programs if ctx.parts.load_part(p.name) is None]
    with ctx.track("the doctor on the benchmark programs", len(missing)) as advance:
        done = {o["program"]: o for o in bench.evaluate_all(missing, config.jobs, advance,
                                                           config.overhead)}
    outcomes = [ctx.part(p.name, lambda p=p: done[p.name]) for p in programs]
    return score(outcomes) | {"split": config.split}


# --------------------------------------------------------------------------------------------
# Claims: the doctor's targets (issue 19), judged on their intervals.


def program_interval(average: dict, result: dict) -> Interval:
    """An average's bootstrap 95% interval over the split's programs."""
    value = average["value"]
    return Interval(value, min(average["low"], value), max(average["high"], value), 0.95,
                    len(result["outcomes"]), "bootstrap over programs")


def check_precision(config: DoctorBenchConfig, result: dict) -> Check:
    average = result["doctor"]["average"]["precision"]
    base = result["baseline"]["average"]["precision"]["value"]
    return Check.at_least(program_interval(average, result), 0.9,
                          f"average precision over verdicts {average['value']:.2f} on the "
                          f"{result['split']} programs (AutoTrainer's rules: {base:.2f})")


def check_recall(config: DoctorBenchConfig, result: dict) -> Check:
    average = result["doctor"]["average"]["recall"]
    base = result["baseline"]["average"]["recall"]["value"]
    zero = [v for v, s in result["doctor"]["per_verdict"].items() if s["recall"]["value"] == 0]
    detail = (f"average recall over verdicts {average['value']:.2f} on the {result['split']} "
              f"programs (AutoTrainer's rules: {base:.2f})"
              + (f"; recall 0 for {', '.join(zero)}" if zero else ""))
    if zero:
        return Check.judge(False, average["value"], detail)
    return Check.at_least(program_interval(average, result), 0.85, detail)


def check_left_alone(config: DoctorBenchConfig, result: dict) -> Check:
    left = result["doctor"]["healthy_left_alone"]
    alarms = {k: v for k, v in result["doctor"]["false_alarms"].items() if v}
    return Check.judge(left["n"] > 0 and left["value"] == 1, left["value"],
                       f"{round(left['value'] * left['n'])} of {left['n']} healthy programs "
                       "with no verdict after warm-up" + (
                           "; alarms: " + ", ".join(f"{k} ({v} checks)" for k, v in
                                                     alarms.items()) if alarms else ""))


def check_no_crash(config: DoctorBenchConfig, result: dict) -> Check:
    crashes = result["crashes"]
    return Check.judge(not crashes, float(len(crashes)), "no program crashed under the doctor"
                       if not crashes else f"crashed: {', '.join(crashes)}")


def check_overhead(config: DoctorBenchConfig, result: dict) -> Check:
    overhead = result["overhead"]
    if not overhead["programs"]:
        return Check.not_checked(None, "no program was timed without the doctor")
    return Check.judge(overhead["median"] <= 1.3, overhead["median"],
                       f"median ×{overhead['median']:.2f}, max ×{overhead['max']:.2f} over "
                       f"{overhead['programs']} programs (script time under the doctor / plain,"
                       " back to back, one thread)")


CLAIMS = (
    Claim("the doctor's verdicts are precise on unseen programs", "gradfail's target: "
          "average precision ≥ 0.9; rule-based tools reach ≤ 0.37 (Humbatova et al. 2025)",
          "95% interval of the average precision over verdicts at or above 0.9",
          check_precision, test="precision per verdict, averaged over the verdicts present; "
          "percentile bootstrap over programs, 95%; holds when the interval is ≥ 0.9",
          id="the-doctors-verdicts-are-precise-on-unseen-programs"),
    Claim("the doctor finds the failures of unseen programs", "gradfail's target: "
          "average recall ≥ 0.85, none at 0; rule-based tools reach ≤ 0.55",
          "95% interval of the average recall at or above 0.85, no verdict at recall 0",
          check_recall, test="recall per verdict, averaged; percentile bootstrap over "
          "programs, 95%; holds when the interval is ≥ 0.85 and no verdict has recall 0",
          id="the-doctor-finds-the-failures-of-unseen-programs"),
    Claim("healthy programs are left alone", "gradfail's target: no verdict on a "
          "healthy program after its warm-up", "every healthy program, every check after 10% "
          "of its steps", check_left_alone, test="a count, not a rate: every healthy program "
          "free of verdicts after its warm-up (the Wilson interval of the fraction is shown)",
          id="healthy-programs-are-left-alone"),
    Claim("no program crashes the doctor", "gradfail's target",
          "every program runs to its end under the doctor", check_no_crash,
          test="a count: no program crashes", id="no-program-crashes-the-doctor"),
    Claim("the doctor's overhead is small", "gradfail's target: median ≤ 1.3×",
          "median ratio of the script's wall time with and without the doctor ≤ 1.3",
          check_overhead, test="the median over programs of each program's wall-time ratio, "
          "timed back to back on one thread; on the wall clock, so judged by its median",
          id="the-doctors-overhead-is-small"),
)


def figures(config: DoctorBenchConfig, result: dict) -> dict:
    fig, (ax_matrix, ax_scores) = new_figure(ncols=2, width=12.0, height=5.5)
    confusion = result["doctor"]["confusion"]
    confusion_matrix(ax_matrix, confusion["matrix"], confusion["rows"], confusion["columns"],
                     "the program's label", f"The doctor on the {result['split']} programs",
                     fontsize=7)
    verdicts = list(result["doctor"]["per_verdict"])
    positions = np.arange(len(verdicts))
    for offset, who, metric in ((-0.3, "doctor", "precision"), (-0.1, "doctor", "recall"),
                                (0.1, "baseline", "precision"), (0.3, "baseline", "recall")):
        values = [result[who]["per_verdict"][v][metric]["value"] for v in verdicts]
        ax_scores.barh(positions + offset, [0 if not math.isfinite(x) else x for x in values],
                       height=0.2, label=f"{'AutoTrainer' if who == 'baseline' else who} "
                       f"{metric}", alpha=1.0 if who == "doctor" else 0.5)
    ax_scores.set_yticks(positions, verdicts, fontsize=7)
    ax_scores.invert_yaxis()
    ax_scores.set(xlim=(0, 1.05), xlabel="score", title="Precision and recall per verdict")
    ax_scores.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2)
    return {"doctor_bench": fig}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "doctor_bench": ("The doctor on unseen programs: the verdict it gives for each program's label "
                     "(confusion matrix), and precision and recall per verdict beside the "
                     "AutoTrainer baseline's."),
}


def work(config: DoctorBenchConfig, seeds: int) -> float:
    """Cost model units: plain program runs: one under the doctor (~1.4x), two more for overhead."""
    return len(chosen(config)) * (1.4 + 2.0 * config.overhead)


EXPERIMENT = Experiment(
    name="doctor_bench",
    section="gradfail.doctor",
    title="The doctor on programs it has never seen: the benchmark of independent scripts",
    version=2,  # 2: runs forked by a zygote (plain and doctor runs start alike)
    config_class=DoctorBenchConfig,
    scales={"quick": {"split": "heldout", "overhead": False, "programs": [
                "regression_lstsq_resume_sgd", "clusters4_mlp_sgd"]},
            "default": {"split": "heldout"}, "paper": {"split": "all"}},
    seeds={"quick": 1, "default": 1, "paper": 1},
    seeded=False,  # fixed programs that seed themselves: the sampled unit is the program
    cores=lambda config: config.jobs,  # its programs run side by side, one thread each
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
