"""The experiment contract: a typed config at three scales, `run`, `figures` and `claims`.

An experiment module builds one `Experiment` and reads top to bottom like the paper section it
reproduces. The CLI, the runner and the report know nothing else about it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import shlex
import sys
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal, Protocol

import numpy as np
import torch
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from gradfail.errors import ConfigError, Diverged, require_known
from gradfail.maths.statistics import Interval

SCALES = ("quick", "default", "paper")
Scale = Literal["quick", "default", "paper"]
Verdict = Literal["holds", "fails", "inconclusive", "not checked"]
VERDICTS: tuple[Verdict, ...] = typing.get_args(Verdict)


def is_sanity(claim: dict) -> bool:
    return claim.get("kind") == "sanity"


def slug(text: str) -> str:
    """Lower-case words joined by hyphens: the first claim ids were the slugs of the claims'
    names then, so "d=30 stays at chance" is `d-30-stays-at-chance`."""
    return "-".join(re.findall(r"\w+", text.lower().replace("'", "")))


def claim_id(claim: dict) -> str:
    """A stored claim's id; a record stored before claims had ids gets its stored name's slug."""
    return claim.get("id") or slug(claim["name"])


def claim_counts(claims: list[dict]) -> dict[str, int]:
    """How many empirical claims of each verdict (sanity checks are not results: never counted)."""
    return {verdict: sum(claim["verdict"] == verdict and not is_sanity(claim)
                         for claim in claims) for verdict in VERDICTS}

# --------------------------------------------------------------------------------------------
# Stability: a verdict must survive a second, disjoint set of seeds.

SECOND_SEED_SET_OFFSET = 1_000_003  # base seed S is replicated on base seed S + this


def second_seed_set(seed: int) -> int:
    """The base seed of the second seed set that replicates a run on base seed `seed`: every
    seed of a run is derived from its base seed by hashing, so the two sets share none."""
    return seed + SECOND_SEED_SET_OFFSET


def judged_on_two_seed_sets(first: list[dict], second: list[dict] | None) -> list[dict]:
    """A run's claims with the replicate's beside them: an empirical verdict that differs
    between the two disjoint seed sets is inconclusive, with that reason, never holds or fails;
    a sanity check broken on either set is broken. Without a replicate, the claims unchanged
    (each marked `stable` None: not tested)."""
    by_id = {claim_id(claim): claim for claim in second or []}
    judged = []
    for claim in first:
        other = by_id.get(claim_id(claim))
        if other is None:
            judged.append(claim | {"stable": None, "second_verdict": None})
            continue
        agree = other["verdict"] == claim["verdict"]
        combined = claim | {"stable": agree, "second_verdict": other["verdict"]}
        if not agree and not is_sanity(claim):
            combined |= {"verdict": "inconclusive", "holds": None, "detail": (
                f"{claim['detail']}; unstable: {claim['verdict']} on the first seed set, "
                f"{other['verdict']} on a second, disjoint one ({other['detail']})")}
        elif not agree:
            combined |= {"verdict": "fails", "holds": False, "detail": (
                f"{claim['detail']}; broken on one of two seed sets: {other['detail']}")}
        judged.append(combined)
    return judged


class Config(BaseModel):
    """Base of every experiment's config: unknown keys are refused, values are immutable,
    floats are finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


ABSURD = 100  # a size over 100x its largest value at any scale is refused before it runs


def numbers(value: Any) -> list[int]:
    """The integer sizes in a setting (itself, or the items of a list); booleans are not."""
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, int) and not isinstance(item, bool)]


def known_name(kind: str, known) -> type[str]:
    """A config field type: a str that must be one of `known` (a one-line error otherwise)."""
    return Annotated[str, AfterValidator(lambda name: require_known(kind, name, known))]


# --------------------------------------------------------------------------------------------
# Claims: the published statements, checked against a result.


@dataclass(frozen=True)
class Check:
    """What a claim's check found: the verdict, the headline number, the evidence in words and,
    for an empirical claim, the interval of the statistic it was judged on."""

    verdict: Verdict
    measured: float | None
    detail: str
    interval: Interval | None = None

    @classmethod
    def judge(cls, holds: bool, measured: float | None, detail: str) -> Check:
        return cls("holds" if holds else "fails", measured, detail)

    @classmethod
    def at_least(cls, interval: Interval, threshold: float, detail: str) -> Check:
        """A claim that a quantity is at least `threshold`, judged on its interval: holds when
        the whole interval is at or above it, fails when the whole interval is below it, and is
        inconclusive when the interval straddles it."""
        verdict = "holds" if interval.low >= threshold else \
            "fails" if interval.high < threshold else "inconclusive"
        return cls(verdict, interval.estimate, f"{detail} ({interval})", interval)

    @classmethod
    def at_most(cls, interval: Interval, threshold: float, detail: str) -> Check:
        """A claim that a quantity is at most `threshold`, judged on its interval (as
        `at_least`, mirrored)."""
        verdict = "holds" if interval.high <= threshold else \
            "fails" if interval.low > threshold else "inconclusive"
        return cls(verdict, interval.estimate, f"{detail} ({interval})", interval)

    @classmethod
    def within(cls, interval: Interval, low: float, high: float, detail: str) -> Check:
        """A claim that a quantity lies in [low, high], judged on its interval: holds when the
        whole interval is inside, fails when it lies wholly outside, else inconclusive."""
        verdict = "holds" if low <= interval.low and interval.high <= high else \
            "fails" if interval.high < low or interval.low > high else "inconclusive"
        return cls(verdict, interval.estimate, f"{detail} ({interval})", interval)

    @classmethod
    def for_every(cls, judge: Callable[[Any], Check], cases: list, label: str = "k") -> Check:
        """`every` over the cases of a claim (each k, each τ), each judged by `judge(case)`;
        not checked when the scale runs none of them."""
        if not cases:
            return cls.not_checked(None, f"no {label} of this claim at this scale")
        return cls.all_of({f"{label}={case}": judge(case) for case in cases})

    @classmethod
    def all_of(cls, parts: dict[str, Check]) -> Check:
        """`every` over named parts (each data set, each case), each detail under its name."""
        return cls.every([replace(check, detail=f"{name}: {check.detail}")
                          for name, check in parts.items()], "")

    @classmethod
    def every(cls, parts: list[Check], detail: str) -> Check:
        """A claim of several parts, each judged on its own interval (at confidence 1 − 0.05/k
        for k parts, Bonferroni): holds when all hold, fails when one fails, else inconclusive
        (or not checked); the measured value and interval are the deciding part's."""
        return cls._deciding(parts, detail, ("fails", "inconclusive", "not checked", "holds"))

    @classmethod
    def some(cls, parts: list[Check], detail: str) -> Check:
        """A claim "at some setting": holds when one part holds, fails when all fail."""
        return cls._deciding(parts, detail, ("holds", "inconclusive", "not checked", "fails"))

    @classmethod
    def _deciding(cls, parts: list[Check], detail: str, rank: tuple[str, ...]) -> Check:
        deciding = min(parts, key=lambda part: rank.index(part.verdict))
        return cls(deciding.verdict, deciding.measured, "; ".join(
            ([detail] if detail else []) + [part.detail for part in parts]), deciding.interval)

    @classmethod
    def not_checked(cls, measured: float | None, detail: str) -> Check:
        return cls("not checked", measured, detail)

    @classmethod
    def within_budget(cls, seen: bool, expected: bool, ran: int, budget: int,
                      measured: float | None, detail: str, unit: str = "steps") -> Check:
        """A claim that an event (reaching a target, leaving chance) does or does not happen
        within the paper's `budget` (in `unit`: steps, or samples where the paper's budget is
        steps × batch), judged on a run of `ran`: an expected event seen holds at any budget,
        an unexpected one fails at any budget; an event not seen is judged only when the run
        was as long as the paper's, else it is not checked."""
        if seen or ran >= budget:
            return cls.judge(seen == expected, measured, detail)
        return cls.not_checked(measured, f"{detail}; ran {ran:,} of the {budget:,} {unit} "
                               "the claim needs")


ClaimKind = Literal["empirical", "sanity"]


@dataclass(frozen=True)
class Claim:
    """A published statement with its number, and how to check it against a run's result.

    `kind`: "empirical" for a claim about the world, which the run can confirm or refute;
    "sanity" for an identity only a bug can break (a theorem's bound on the quantity it bounds,
    a reduction, a certificate): shown apart, never counted in the tally, and, when it fails, a
    bug to fix rather than a result.

    `test`: an empirical claim's statistical rule, stated before it runs: the statistic, its
    interval (over seeds, by bootstrap, exact, or censoring-aware) and the direction of the
    effect; the check judges that interval against the tolerance's threshold.

    `name`: the statement claimed, so that "holds" or "fails" beside it reads plainly; `id`: a
    short slug, unique within the experiment, that never changes (stored results are matched
    to the claim by it, so the statement can be reworded)."""

    name: str
    paper: str
    tolerance: str
    check: Callable[[Any, dict], Check]
    kind: ClaimKind = "empirical"
    test: str = ""
    # one line on why the claim fails where it does (a finding, the budget, or a known setup
    # difference), shown beside a `fails` verdict; written from the runs, it changes no verdict
    if_fails: str = ""
    id: str = field(kw_only=True)

    def evaluate(self, config: Config, result: dict) -> dict:
        check = self.check(config, result)
        measured = check.measured
        if measured is not None and not math.isfinite(measured):
            measured = None
        return {
            "id": self.id,
            "name": self.name,
            "paper": self.paper,
            "tolerance": self.tolerance,
            "measured": measured,
            "detail": check.detail,
            "verdict": check.verdict,
            "holds": {"holds": True, "fails": False}.get(check.verdict),
            "kind": self.kind,
            "test": self.test,
            "interval": interval_json(check.interval),
        }


def restate(claims: list[dict], registered: tuple[Claim, ...] = ()) -> list[dict]:
    """Stored claim records as they are shown: each with its id (`claim_id`) and, where a
    claim of `registered` has that id, its current statement (an old store reads as today's)."""
    statements = {claim.id: claim.name for claim in registered}
    return [record | {"id": claim_id(record),
                      "name": statements.get(claim_id(record), record["name"])}
            for record in claims]


def interval_json(interval: Interval | None) -> dict | None:
    """An interval as stored: infinite ends (an interval over one seed) become None."""
    if interval is None:
        return None
    finite = lambda x: x if math.isfinite(x) else None  # noqa: E731
    return {"low": finite(interval.low), "high": finite(interval.high),
            "confidence": interval.confidence, "n": interval.n, "method": interval.method}


# --------------------------------------------------------------------------------------------
# The experiment and its config at a scale.


@dataclass(frozen=True)
class Experiment:
    """One difficulty: its config class, scales, run, figures and claims."""

    name: str
    section: str
    title: str
    version: int
    config_class: type[Config]
    scales: dict[str, dict[str, Any]]
    run: Callable[[Any, RunContext], dict]
    figures: Callable[[Any, dict], dict[str, Any]]
    claims: tuple[Claim, ...]
    # what to see in each figure, by the name `figures` gives it: stored with the figure and
    # shown under it in the report
    captions: dict[str, str] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=lambda: {"quick": 2, "default": 4, "paper": 8})
    # cores a run takes when runs go side by side: one, or as many as the processes it starts
    cores: Callable[[Any], int] = lambda config: 1
    # the computation a run asks for, in units proportional to its time on one core (e.g. seeds
    # × steps × batch): the cost model (gradfail.costs) scales a measured time by it
    work: Callable[[Any, int], float] = lambda config, seeds: 1.0
    # False for an experiment that never draws from its run's seed (fixed programs that seed
    # themselves): a second seed set would repeat it draw for draw, so `--stability` skips it,
    # and its run context refuses a generator
    seeded: bool = True

    @property
    def description(self) -> list[str]:
        """The experiment module's docstring after its title, a paragraph a line: what fails, and
        why."""
        paragraphs = (sys.modules[self.run.__module__].__doc__ or "").strip().split("\n\n")
        return [" ".join(paragraph.split()) for paragraph in paragraphs[1:]]

    def rerun_command(self, config: Config, scale: str, seed: int, n_seeds: int,
                      device: str) -> str:
        """The one command that reruns this run: scale, seeds and any setting that differs from
        the scale's."""
        command = f"gradfail run {self.name} --scale {scale} --seeds {n_seeds} --seed {seed}"
        base = self.config(scale).model_dump(mode="json")
        for key, value in config.model_dump(mode="json").items():
            if base.get(key) != value:
                command += " --set " + shlex.quote(
                    f"{key}={json.dumps(value, separators=(',', ':'))}")
        return command + ("" if device == "cpu" else f" --device {device}")

    def about(self, config: Config, scale: str, seed: int, n_seeds: int, device: str,
              replicate_of: int | None = None) -> dict:
        """What the report says of a run, stored with it: the report reads only the store.
        `replicate_of`: the base seed of the run this one replicates on a second seed set."""
        about = {"title": self.title, "section": self.section, "description": self.description,
                 "command": self.rerun_command(config, scale, seed, n_seeds, device)}
        return about if replicate_of is None else about | {"replicate_of_seed": replicate_of}

    @property
    def has_empirical_claims(self) -> bool:
        return any(claim.kind == "empirical" for claim in self.claims)

    def config(self, scale: str = "default", overrides: dict[str, Any] | None = None) -> Config:
        """The resolved config: the paper's values, the scale's changes, then the user's."""
        if scale not in SCALES:
            raise ConfigError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
        overrides = dict(overrides or {})
        fields = self.config_class.model_fields
        for key in overrides:
            if key not in fields:
                near = difflib.get_close_matches(key, fields, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ConfigError(
                    f"unknown setting {key!r} for {self.name}{hint}; settings: {', '.join(fields)}"
                )
        for key, value in overrides.items():  # `--set dims=5` means the list [5]
            if typing.get_origin(fields[key].annotation) is list and not isinstance(value, list):
                overrides[key] = [value]
        values = {**self.scales.get(scale, {}), **overrides}
        try:
            config = self.config_class.model_validate(values)
        except ValidationError as error:
            first = error.errors()[0]
            message = first["msg"].removeprefix("Value error, ")
            if not first["loc"]:
                raise ConfigError(f"invalid config for {self.name}: {message}") from None
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigError(
                f"invalid setting {where}={first.get('input')!r} for {self.name}: {message}"
            ) from None
        self.refuse_absurd_sizes(overrides)
        return config

    def refuse_absurd_sizes(self, overrides: dict[str, Any]) -> None:
        """A size (steps, width, samples...) over `ABSURD` times its largest value at any scale
        would run for days or exhaust memory: refused in one line before anything starts."""
        for key, value in overrides.items():
            largest = max(abs(n) for scale in SCALES for n in numbers(getattr(
                self.config_class.model_validate(self.scales.get(scale, {})), key)) or [1])
            for n in numbers(value):
                if abs(n) > ABSURD * max(largest, 1):
                    raise ConfigError(
                        f"setting {key}={n:,} for {self.name} is over {ABSURD}x its largest "
                        f"value at any scale ({largest:,}); refusing an absurd size")


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings from `--set` to a dict; values are JSON, a comma list, or text."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = [item.strip() for item in text.split(",")] if "," in text else text
        overrides[key.strip()] = value
    return overrides


def config_json(config: Config) -> str:
    """The canonical JSON of a resolved config: the identity used for resume."""
    return json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# The run context: device, seeds, resumable parts, metric logging, progress.


class PartStore(Protocol):
    """Where a run keeps its finished parts, so an interrupted run resumes where it stopped."""

    def load_part(self, key: str) -> dict | None: ...

    def save_part(self, key: str, result: dict, metrics: list[tuple], wall_s: float) -> None: ...


class ProgressTracker(Protocol):
    def task(self, description: str, total: int) -> Callable[[int], None]: ...

    def done(self, description: str) -> None: ...

    def running(self, description: str) -> Callable[[], None]: ...


class SilentProgress:
    """Progress that shows nothing (stdout is not a terminal, or a test)."""

    def task(self, description: str, total: int) -> Callable[[int], None]:
        return lambda advance=1: None

    def done(self, description: str) -> None:
        return None

    def running(self, description: str) -> Callable[[], None]:
        """A phase shown while it runs (every part is one); returns the call that ends it."""
        return lambda: None


class MemoryParts:
    """A part store that keeps nothing between processes (for library use and tests)."""

    def __init__(self) -> None:
        self.parts: dict[str, dict] = {}

    def load_part(self, key: str) -> dict | None:
        return self.parts.get(key)

    def save_part(self, key: str, result: dict, metrics: list[tuple], wall_s: float) -> None:
        self.parts[key] = result


def to_jsonable(value: Any) -> Any:
    """Arrays, tensors and tuples to plain JSON values (what a stored result looks like)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    return value


@dataclass
class RunContext:
    """What `run(config, ctx)` gets: device, seeds, seeded generators, parts, metrics, progress.

    Every random draw comes from `ctx.generator(*key)`, seeded from the run's seed and the key,
    so a part recomputed after an interruption draws exactly what it drew the first time.
    """

    device: torch.device
    seed: int
    n_seeds: int
    parts: PartStore = field(default_factory=MemoryParts)
    progress: ProgressTracker = field(default_factory=SilentProgress)
    seeded: bool = True  # False: the experiment declared it never draws (Experiment.seeded)
    _metrics: list[tuple] = field(default_factory=list)

    def _derived_seed(self, key: tuple) -> int:
        text = json.dumps([self.seed, *map(str, key)])
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1

    def generator(self, *key: Any) -> torch.Generator:
        """A torch generator on the run's device, seeded by (run seed, key)."""
        if not self.seeded:
            raise RuntimeError("an experiment declared seed-free (seeded=False) asked for a "
                               "generator: its runs would depend on their seed")
        return torch.Generator(device=self.device).manual_seed(self._derived_seed(key))

    def part(self, key: str, compute: Callable[[], dict]) -> dict:
        """The result of one resumable piece of work: loaded if stored, else computed and stored."""
        stored = self.parts.load_part(key)
        if stored is not None:
            self.progress.done(f"{key} (stored)")
            return stored
        pending, self._metrics = self._metrics, []
        start = time.perf_counter()
        ended = self.progress.running(key)
        try:
            result = to_jsonable(compute())
        finally:
            ended()
        self.parts.save_part(key, result, self._metrics, time.perf_counter() - start)
        self._metrics = pending
        return result

    def log(self, series: str, steps: Any, values: Any) -> None:
        """A metric series: `values` is (steps,) or (seeds, steps); stored with its part."""
        values = np.atleast_2d(np.asarray(to_jsonable(values), dtype=float))
        for seed_index, row in enumerate(values):
            for step, value in zip(to_jsonable(steps), row, strict=True):
                self._metrics.append((series, int(step), seed_index, float(value)))

    def pending_metrics(self) -> list[tuple]:
        """Metric rows logged outside any part (stored when the run finishes), emptied."""
        pending, self._metrics = self._metrics, []
        return pending

    @contextmanager
    def track(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A progress bar for long work; yields `advance(n)`."""
        yield self.progress.task(description, total)


def check_finite(loss: torch.Tensor, where: str) -> None:
    """Raise `Diverged` when a loss is NaN or infinite (the run is then stored as diverged)."""
    if not bool(torch.isfinite(loss).all()):
        raise Diverged(f"loss is not finite in {where}")

