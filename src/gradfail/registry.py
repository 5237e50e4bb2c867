"""Experiment names to experiments. `gradfail list` reads it; unknown names get "did you mean"."""

from __future__ import annotations

import difflib
import functools
import importlib

from gradfail.errors import GradfailError, UnknownExperiment
from gradfail.experiment import Experiment, claim_id, restate

# One module a difficulty, in the order of the paper and then the catalogue.
EXPERIMENT_MODULES = (
    "gradfail.experiments.paper.parity",
    "gradfail.experiments.paper.end_to_end",
    "gradfail.experiments.paper.stocks",
    "gradfail.experiments.paper.conditioning",
    "gradfail.experiments.paper.flat_activation",
    "gradfail.experiments.classic.depth",
    "gradfail.experiments.classic.deep_linear",
    "gradfail.experiments.classic.exploding_rnn",
    "gradfail.experiments.classic.saddles",
    "gradfail.experiments.classic.optimizers",
    "gradfail.experiments.classic.fitting",
    "gradfail.experiments.exact.perceptron_lp",
    "gradfail.experiments.exact.three_node",
    "gradfail.experiments.exact.optimality_gap",
    "gradfail.experiments.distributed.async_sgd",
    "gradfail.experiments.distributed.async_escape",
    "gradfail.experiments.notes.weight_sharing",
    "gradfail.experiments.notes.skip_flat",
    "gradfail.experiments.notes.designed_filters",
    "gradfail.experiments.notes.cost_functions",
    "gradfail.experiments.doctor.doctor_zoo",
    "gradfail.experiments.doctor.doctor_bench",
)


@functools.cache
def experiments() -> dict[str, Experiment]:
    """Every registered experiment by name, in catalogue order (imported on first use)."""
    experiments: dict[str, Experiment] = {}
    for module_name in EXPERIMENT_MODULES:
        experiment = importlib.import_module(module_name).EXPERIMENT
        if experiment.name in experiments:
            raise GradfailError(f"experiment name {experiment.name!r} is registered twice")
        experiments[experiment.name] = experiment
    return experiments


def get(name: str) -> Experiment:
    known = experiments()
    if name in known:
        return known[name]
    near = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise UnknownExperiment(
        f"unknown experiment {name!r}{hint} (known: {', '.join(known)})"
    )


def restated(experiment: str, claims: list[dict]) -> list[dict]:
    """An experiment's stored claims, each with its id and, where the experiment is still
    registered, the current statement of the claim with that id (`experiment.restate`)."""
    found = experiments().get(experiment)
    return restate(claims, found.claims if found else ())


def verdict_reason(experiment: str, claim: dict) -> str:
    """One line on why a stored claim fails (its experiment's own account, `Claim.if_fails`,
    found by the claim's id) or is inconclusive; "" for the other verdicts."""
    if claim["verdict"] == "fails":
        found = experiments().get(experiment)
        account = next((c.if_fails for c in found.claims if c.id == claim_id(claim)),
                       "") if found else ""
        return account or "no account recorded: the measured values are the result"
    if claim["verdict"] == "inconclusive":
        return ("the two disjoint seed sets disagree" if claim.get("stable") is False
                else "its interval straddles the claim's threshold")
    return ""
