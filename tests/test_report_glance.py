"""The report at a glance: what needs attention first, a table of contents grouped by the
mission's parts, descriptions from Markdown with MathML, figures that open full size, and no
external reference. A tiny hand-made store: no experiment runs."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from markupsafe import escape  # noqa: E402

from gradfail import registry  # noqa: E402
from gradfail.report import latest_runs, markdown, write_report  # noqa: E402
from gradfail.store import RunIdentity, Store  # noqa: E402


class Page(HTMLParser):
    """Every element's attributes, the <li> texts of the attention list, the TOC's groups and
    links, and the text inside <math> and <code>."""

    def __init__(self, html: str):
        super().__init__()
        self.ids: set[str] = set()
        self.elements: list[tuple[str, dict]] = []
        self.stack: list[tuple[str, dict]] = []
        self.attention: list[str] = []
        self.attention_links: list[str] = []
        self.toc: dict[str, list[str]] = {}
        self.tags: dict[str, int] = {}
        self.feed(html)

    def inside(self, tag: str, **attrs: str) -> bool:
        return any(t == tag and all(a.get(k) == v for k, v in attrs.items())
                   for t, a in self.stack)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "li" and self.inside("section", id="needs-attention"):
            self.attention.append("")
        if tag == "a" and self.inside("li") and self.inside("section", id="needs-attention"):
            self.attention_links.append(attrs["href"])
        if tag == "a" and self.inside("nav", id="toc") and self.toc:
            self.toc[list(self.toc)[-1]].append(attrs["href"])
        if tag not in ("img", "br", "meta"):
            self.stack.append((tag, attrs))

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if self.inside("li") and self.inside("section", id="needs-attention"):
            self.attention[-1] += data
        if self.inside("h3") and self.inside("nav", id="toc") and data.strip():
            self.toc[data.strip()] = []  # a group: the links that follow are its


def claim(name: str, verdict: str, kind: str = "empirical") -> dict:
    return {"name": name, "paper": f"paper says {name}", "tolerance": "≥ 0.9",
            "measured": 0.5, "detail": f"measured {name} " + "and more " * 60, "verdict": verdict,
            "kind": kind, "test": None, "interval": None, "stable": None}


PROVENANCE = {key: "x" for key in ("device_name", "torch", "numpy", "python", "gradfail",
                                    "git_commit", "command")}


def add_run(store: Store, experiment: str, scale: str, claims: list[dict], figures=None,
            description=(), captions=None) -> int:
    identity = RunIdentity(experiment, 1, f'{{"scale": "{scale}"}}', 0, 1, "cpu")
    about = {"title": f"Title of {experiment}", "section": "§0",
             "description": list(description), "command": f"gradfail run {experiment}"}
    run_id = store.begin_run(identity, scale, PROVENANCE, about)
    store.finish_run(run_id, "done", 1.0, result={}, claims=claims, figures=figures,
                     captions=captions)
    return run_id


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    figure_dir = tmp_path / "s.figures"
    figure_dir.mkdir()
    paths = {}
    for name, size in (("panels", (9, 3)), ("single", (4, 3))):
        fig, _ = plt.subplots(figsize=size, dpi=20)
        fig.savefig(figure_dir / f"{name}.png")
        plt.close(fig)
        paths[name] = store.figure_path(figure_dir / f"{name}.png")
    add_run(store, "parity", "quick", [claim("learns at d=5", "holds"),
                                       claim("chance at d=30", "fails"),
                                       claim("variance bound", "inconclusive"),
                                       claim("identity", "fails", "sanity"),
                                       claim("other identity", "holds", "sanity"),
                                       claim("long run", "not checked")],
            figures=paths, description=["The variance is $2^{-d}$ with `parity.py`, E[ffᵀ].",
                                        "<script>alert(1)</script> and [a](https://x.org)"],
            captions={"panels": "Three panels: the larger d, the longer at <chance>."})
    add_run(store, "depth", "default", [claim("deep nets stall", "inconclusive")])
    add_run(store, "async_sgd", "default", [claim("stale steps hurt", "holds")])
    return store


def test_attention_lists_exactly_the_failing_and_inconclusive_claims(store, tmp_path):
    page = Page(write_report(store, tmp_path / "report").read_text())
    assert len(page.attention) == 4
    for name in ("chance at d=30", "variance bound", "identity", "deep nets stall"):
        assert sum(name in line for line in page.attention) == 1, name
    assert not any("learns at d=5" in line or "long run" in line or "stale steps" in line
                   for line in page.attention)
    assert "broken: a bug" in next(line for line in page.attention if "identity" in line)
    assert all("…" in line and len(line) < 400 for line in page.attention)  # shortened
    assert page.attention_links == ["#parity"] * 3 + ["#depth"]
    assert all(link[1:] in page.ids for link in page.attention_links)


def test_the_table_of_contents_is_grouped_by_the_missions_parts(store, tmp_path):
    store.save_doctor_session("Net", {"optimizer": "SGD", "steps": 3, "verdicts": []}, [], {})
    page = Page(write_report(store, tmp_path / "report").read_text())
    groups = page.toc
    assert groups == {"The paper's four failures": ["#parity"],
                      "The classic difficulties": ["#depth"],
                      "Asynchronous SGD": ["#async_sgd"],
                      "The doctor": ["#doctor-session-1"]}
    assert all(link[1:] in page.ids for links in groups.values() for link in links)


def test_descriptions_are_markdown_with_mathml_and_no_raw_html(store, tmp_path):
    html = write_report(store, tmp_path / "report").read_text()
    page = Page(html)
    assert page.tags.get("math", 0) >= 1 and "<msup>" in html
    assert "<code>parity.py</code>" in html and "E[ffᵀ]" in html
    assert "&lt;script&gt;" in html and page.tags.get("script", 0) == 0
    assert str(markdown("$\\text{<b>}$ $\\href{https://x.org}{y}$")).count("<b>") == 0
    assert "https://" not in str(markdown("$\\href{https://x.org}{y}$"))
    assert str(markdown("costs $5 and $6")) == "costs $5 and $6"
    assert str(markdown("y = u(v*ᵀx + b*), x_i")) == "y = u(v*ᵀx + b*), x_i"  # maths, not emphasis


def test_no_external_reference_and_figures_open_full_size(store, tmp_path):
    html = write_report(store, tmp_path / "report").read_text()
    page = Page(html)
    assert "<script" not in html and "[a](https://x.org)" in html  # a docstring's URL: text
    for tag, attrs in page.elements:
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not value.startswith(("http:", "https:", "//")), (tag, value)
    images = [attrs["src"] for tag, attrs in page.elements if tag == "img"]
    links = [attrs["href"] for tag, attrs in page.elements if tag == "a"]
    assert len(images) == 2 and all(src in links for src in images)
    assert all((tmp_path / "report" / src).exists() for src in images)
    wide = [attrs for tag, attrs in page.elements if tag == "figure" and attrs.get("class")]
    assert len(wide) == 1  # the three-panel-wide figure, full width


def test_a_quick_run_makes_the_verdicts_provisional(store, tmp_path):
    page = Page(write_report(store, tmp_path / "report").read_text())
    assert any(tag == "p" and attrs.get("class") == "provisional"
               for tag, attrs in page.elements)
    default_only = Store(tmp_path / "d.sqlite")
    add_run(default_only, "depth", "default", [claim("deep nets stall", "holds")])
    page = Page(write_report(default_only, tmp_path / "r2").read_text())
    assert not any(attrs.get("class") == "provisional" for _, attrs in page.elements)
    assert page.attention == []


def test_each_figure_is_captioned_under_it_with_what_its_run_stored(store, tmp_path):
    (run,) = store.runs("parity")
    assert run["captions"] == {"panels": "Three panels: the larger d, the longer at <chance>."}
    html = write_report(store, tmp_path / "report").read_text()
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", html, re.S)
    assert [" ".join(re.sub("<[^>]+>", "", c).split()) for c in captions] == [
        "panels: Three panels: the larger d, the longer at &lt;chance&gt;.",
        "single"]  # a figure stored without a caption is named only


def test_a_reworded_claim_keeps_its_stored_verdict_by_id_and_reads_as_worded_now(tmp_path):
    """Records stored before claims had ids, or under an older wording, are matched to the
    registered claim by id and shown with its current statement."""
    store = Store(tmp_path / "s.sqlite")
    before_ids = {"name": "smoothed gradient fails", "verdict": "holds"}
    older_wording = {"id": "end-to-end-10-off", "name": "an older wording", "verdict": "fails"}
    add_run(store, "flat_activation", "default", [
        {"paper": "", "tolerance": "", "measured": None, "detail": "", "kind": "empirical",
         "test": None, "interval": None, **record}
        for record in (before_ids, older_wording)])
    now = {claim.id: claim.name for claim in registry.get("flat_activation").claims}
    (run,) = latest_runs(store)
    assert [(c["id"], c["name"], c["verdict"]) for c in run["claims"]] == [
        ("smoothed-gradient-fails", now["smoothed-gradient-fails"], "holds"),
        ("end-to-end-10-off", now["end-to-end-10-off"], "fails")]
    html = write_report(store, tmp_path / "report").read_text()
    assert all(str(escape(now[key])) in html for key in ("smoothed-gradient-fails",
                                                        "end-to-end-10-off"))
    assert "smoothed gradient fails" not in html and "an older wording" not in html
