"""Every registered experiment: runs at quick scale, with evidence for each claim and figures."""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path

import pytest

from gradfail import registry
from gradfail.experiment import VERDICTS, slug
from gradfail.errors import GradfailError, UnknownExperiment


def test_every_experiment_runs_at_quick_scale_with_evidence(quick_store):
    runs = {run["experiment"]: run for run in quick_store.runs()}
    assert set(runs) == set(registry.experiments())
    for name, run in runs.items():
        experiment = registry.get(name)
        assert run["status"] == "done", (name, run["error"])
        assert [(c["id"], c["name"]) for c in run["claims"]] == [(c.id, c.name)
                                                                 for c in experiment.claims]
        assert all(c["detail"] and c["paper"] for c in run["claims"])
        assert all(c["verdict"] in VERDICTS for c in run["claims"]), name
        assert run["figures"] and all(Path(p).exists() for p in run["figures"].values())
        assert set(run["captions"]) == set(run["figures"]), name  # stored with each figure
        assert run["provenance"]["torch"] and run["config"] == experiment.config(
            "quick").model_dump(mode="json")


def drawn_names(figures) -> set[str]:
    """The names a `figures` function can give its figures, read from its source: the keys of
    the dict it returns, and the string keys assigned into it (a figure drawn only at some
    scales too)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(figures)))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Dict):
            names |= {key.value for key in node.value.keys}
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Name):
            returned = node.value.id
            for assign in (n for n in ast.walk(tree) if isinstance(n, ast.Assign)):
                for target in assign.targets:
                    if getattr(target, "id", None) == returned:
                        names |= {key.value for key in assign.value.keys}
                    elif getattr(getattr(target, "value", None), "id", None) == returned:
                        names.add(target.slice.value)
    return names


def test_every_figure_of_every_experiment_has_a_caption():
    for experiment in registry.experiments().values():
        assert drawn_names(experiment.figures) == set(experiment.captions), experiment.name
        assert all(len(caption.split()) >= 8 for caption in experiment.captions.values())


def test_claim_ids_are_slugs_unique_within_each_experiment():
    for experiment in registry.experiments().values():
        ids = [claim.id for claim in experiment.claims]
        assert len(set(ids)) == len(ids), experiment.name
        assert all(claim.id == slug(claim.id) for claim in experiment.claims), experiment.name


def test_every_empirical_claim_states_its_test_before_it_runs():
    for experiment in registry.experiments().values():
        for claim in experiment.claims:
            assert claim.kind == "sanity" or claim.test.strip(), (experiment.name, claim.name)


def test_every_experiment_has_three_scales_and_cites_its_section():
    for experiment in registry.experiments().values():
        for scale in ("quick", "default", "paper"):
            experiment.config(scale)
        assert experiment.section and experiment.description


def test_unknown_names_get_a_suggestion():
    with pytest.raises(UnknownExperiment, match="did you mean 'end_to_end'"):
        registry.get("end-to-end")


def test_a_name_registered_twice_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "EXPERIMENT_MODULES", ("gradfail.experiments.paper.parity",) * 2)
    registry.experiments.cache_clear()
    try:
        with pytest.raises(GradfailError, match="registered twice"):
            registry.experiments()
    finally:
        registry.experiments.cache_clear()


def test_the_identities_only_a_bug_can_break_are_sanity_checks():
    """Each experiment's identity (a theorem's bound on what it bounds, a reduction, a
    certificate, a count) is a sanity check, not a result (issue 21)."""
    sanity = {(name, c.name) for name, e in registry.experiments().items() for c in e.claims
              if c.kind == "sanity"}
    assert {name for name, _ in sanity} == {
        "parity", "exploding_rnn", "perceptron_lp", "weight_sharing", "skip_flat",
        "optimality_gap", "async_sgd", "three_node", "flat_activation"}
    assert all(c.kind in ("empirical", "sanity") for e in registry.experiments().values()
               for c in e.claims)


def test_a_failing_claim_carries_its_experiments_account_and_an_inconclusive_one_its_cause():
    from gradfail.registry import verdict_reason

    claim = {"name": "skipping saves wall time", "verdict": "fails"}  # stored before ids
    assert verdict_reason("skip_flat", claim).startswith("a finding: gathering the patches")
    reworded = {"id": "skipping-saves-wall-time", "name": "an older wording", "verdict": "fails"}
    assert verdict_reason("skip_flat", reworded) == verdict_reason("skip_flat", claim)
    assert verdict_reason("parity", {"name": "d=5 is learned", "verdict": "fails"}) == (
        "no account recorded: the measured values are the result")
    assert verdict_reason("parity", {"name": "x", "verdict": "inconclusive", "stable": False}) == (
        "the two disjoint seed sets disagree")
    assert "straddles" in verdict_reason("parity", {"name": "x", "verdict": "inconclusive"})
    assert verdict_reason("parity", {"name": "x", "verdict": "holds"}) == ""
