"""`gradfail report --compare OTHER`: two stores side by side per claim, the claims whose
verdicts differ marked. Two tiny parity runs (a second or two each) whose configs differ so that
one verdict differs; the pairing itself on hand-made runs."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from gradfail import registry
from gradfail.compare import compare, describe
from gradfail.report import write_report
from gradfail.runner import run_experiment
from gradfail.store import RunIdentity, Store
from conftest import gradfail_cli

PARITY = registry.get("parity")
TINY = {"dims": [5], "steps": [300], "variance_dims": [4, 5], "floor_dims": [],
        "periodic_dim": 3, "periodic_radii": [0.5], "periodic_inputs": 256}
# three enumerated dimensions let "the gradient variance falls like 2^-d" be judged (it holds);
# two leave it not checked; every other claim and the sanity check agree between the two
THREE_DIMS = {**TINY, "variance_dims": [4, 5, 6]}
FEWER_STEPS = {**TINY, "steps": [30]}
DIFFERING = "the gradient variance falls like 2^-d"


class CompareSection(HTMLParser):
    """The rows of the #compare section's tables: each row's classes and cell texts."""

    def __init__(self, html: str):
        super().__init__()
        self.found = False
        self.depth = 0  # open <section> elements inside #compare
        self.rows: list[dict] = []
        self.headings: list[str] = []
        self.in_h2 = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" and attrs.get("id") == "compare":
            self.found, self.depth = True, 1
            return
        if not self.depth:
            return
        if tag == "section":
            self.depth += 1
        if tag == "h2":
            self.in_h2 = True
            self.headings.append("")
        if tag == "tr" and "compare-row" in (attrs.get("class") or "").split():
            self.rows.append({"classes": attrs["class"].split(), "cells": []})
        if tag == "td" and self.rows:
            self.rows[-1]["cells"].append("")

    def handle_endtag(self, tag):
        if tag == "section" and self.depth:
            self.depth -= 1
        if tag == "h2":
            self.in_h2 = False

    def handle_data(self, data):
        if not self.depth:
            return
        if self.in_h2:
            self.headings[-1] += data
        if self.rows and self.rows[-1]["cells"]:
            self.rows[-1]["cells"][-1] += data


def add_run(store: Store, experiment: str, claims: list[dict]) -> None:
    """A hand-made finished run of an experiment the other store lacks."""
    run_id = store.begin_run(RunIdentity(experiment, 1, '{"scale": "default"}', 0, 1, "cpu"),
                             "default", {"git_commit": "abc"}, {"title": experiment})
    store.finish_run(run_id, "done", 1.0, result={}, claims=claims)


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> tuple[Store, Store]:
    folder = tmp_path_factory.mktemp("compare")
    here, there = Store(folder / "three-dims.sqlite"), Store(folder / "fewer-steps.sqlite")
    run_experiment(PARITY, PARITY.config("quick", THREE_DIMS), scale="quick", store=here,
                   n_seeds=2)
    run_experiment(PARITY, PARITY.config("quick", FEWER_STEPS), scale="quick", store=there,
                   n_seeds=2)
    add_run(there, "depth", [claim("deep nets stall", "holds")])
    return here, there


def claim(name: str, verdict: str, kind: str = "empirical") -> dict:
    return {"name": name, "paper": "", "measured": 0.5, "detail": f"{name}: {verdict}",
            "verdict": verdict, "kind": kind, "interval": None, "stable": None}


def run(experiment: str, claims: list[dict], scale: str = "default", device: str = "cpu"
        ) -> dict:
    return {"experiment": experiment, "scale": scale, "seed": 0, "n_seeds": 4, "device": device,
            "status": "done", "provenance": {"device": device, "git_commit": "0123456789abcdef"},
            "claims": claims}


def test_compare_pairs_claims_by_id_and_marks_the_differences():
    runs = [run("parity", [claim("learns", "holds"), claim("chance", "fails"),
                           claim("bound", "holds", "sanity"), claim("mine", "holds")]),
            run("depth", [claim("stalls", "inconclusive")])]
    others = [run("parity", [claim("learns", "holds"), claim("theirs", "fails"),
                             claim("bound", "fails", "sanity"), claim("chance", "holds")],
                  scale="paper", device="cuda"),
              run("noise", [claim("helps", "holds")])]
    others[0]["provenance"]["git_commit"] = "fedcba9876543210fedcba-dirty"
    compared = compare(runs, others)
    assert [e["experiment"] for e in compared] == ["parity", "depth", "noise"]
    parity = {r["name"]: r for r in compared[0]["rows"]}
    assert list(parity) == ["learns", "chance", "bound", "mine", "theirs"]
    assert {name for name, r in parity.items() if r["differs"]} == {"chance", "bound"}
    assert {name: r["only"] for name, r in parity.items()} == {
        "learns": None, "chance": None, "bound": None, "mine": "here", "theirs": "there"}
    assert parity["chance"]["this"]["verdict"] == "fails"
    assert parity["chance"]["other"] == {"verdict": "holds", "measured": 0.5,
                                         "detail": "chance: holds"}
    assert parity["mine"]["other"] is None and parity["theirs"]["this"] is None
    assert parity["bound"]["kind"] == "sanity" and parity["learns"]["experiment"] == "parity"
    assert compared[0]["differing"] == 2 and compared[0]["one_sided"] == 2
    assert [r["only"] for r in compared[1]["rows"]] == ["here"]
    assert [r["only"] for r in compared[2]["rows"]] == ["there"]
    assert not any(r["differs"] for e in compared[1:] for r in e["rows"])
    assert compared[0]["this_run"] == "default scale · 4 seeds from 0 · cpu · commit 0123456789ab"
    assert compared[0]["other_run"] == ("paper scale · 4 seeds from 0 · cuda · "
                                        "commit fedcba987654-dirty")
    assert compared[1]["other_run"] == describe(None) == "no run of this experiment"


def test_compare_pairs_a_claim_stored_before_ids_with_its_reworded_self_by_id():
    before_ids = claim("smoothed gradient fails", "holds")
    reworded = claim("the smoothed gradient leaves over 50% of the points off", "fails") | {
        "id": "smoothed-gradient-fails"}
    (compared,) = compare([run("flat_activation", [reworded])],
                          [run("flat_activation", [before_ids])])
    (row,) = compared["rows"]
    assert (row["id"], row["name"], row["only"], row["differs"]) == (
        "smoothed-gradient-fails", reworded["name"], None, True)


def test_the_report_marks_exactly_the_rows_whose_verdicts_differ(stores, tmp_path):
    here, there = stores
    page = CompareSection(write_report(here, tmp_path / "report", compare_with=there)
                          .read_text())
    assert page.found
    assert "three-dims.sqlite" in page.headings[0] and "fewer-steps.sqlite" in page.headings[0]
    assert "quick" in page.headings[0] and "default" in page.headings[0]  # the scales held
    differing = [r for r in page.rows if "differs" in r["classes"]]
    assert len(differing) == 1 and DIFFERING in differing[0]["cells"][0]
    assert "≠" in differing[0]["cells"][0]
    assert differing[0]["cells"][1].startswith("holds")
    assert differing[0]["cells"][2].startswith("not checked")
    assert not any("≠" in r["cells"][0] for r in page.rows if "differs" not in r["classes"])
    parity = [r for r in page.rows if "only-there" not in r["classes"]]
    assert len(parity) == len(here.runs()[0]["claims"])  # every claim, sanity checks included
    sanity = [r for r in page.rows if "sanity" in r["classes"]]
    assert sanity and all("sanity check" in r["cells"][0] for r in sanity)
    only = [r for r in page.rows if "only-there" in r["classes"]]
    assert len(only) == 1 and "deep nets stall" in only[0]["cells"][0]
    assert "not in this store" in only[0]["cells"][1]


def test_without_compare_there_is_no_section(stores, tmp_path):
    html = write_report(stores[0], tmp_path / "report").read_text()
    assert not CompareSection(html).found and not re.search(r'id="compare', html)


def test_the_command_line_compares_and_refuses_a_missing_store_in_one_line(stores, tmp_path):
    here, there = stores
    done = gradfail_cli("report", "--store", str(here.path), "--compare", str(there.path),
                        "--out", str(tmp_path / "report"))
    assert done.returncode == 0, done.stderr
    assert CompareSection((tmp_path / "report" / "index.html").read_text()).found
    missing = tmp_path / "missing.sqlite"
    done = gradfail_cli("report", "--store", str(here.path), "--compare", str(missing),
                        "--out", str(tmp_path / "r2"))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and str(missing) in done.stderr
    assert not missing.exists()
