"""The HTML report: each experiment's latest stored run, its figures and claims, and provenance;
then the doctor sessions stored from users' training runs, with each verdict's history.

Self-contained: one `index.html` (jinja2 template `templates/report.html.j2`) with its figures
copied beside it under `figures/` (a doctor session's figure, drawn from its stored history,
embedded in it); no network resources and no JavaScript. Failed and diverged runs are shown as
such. The report reads only the store. At a glance: what needs attention first
(claims that fail or are inconclusive, broken sanity checks, runs that did not finish), a table
of contents grouped by the experiments' packages, descriptions rendered from Markdown (backticks
as code, `$...$` as MathML, no raw HTML, links or emphasis). With another store
(`gradfail report --compare OTHER`, `gradfail.compare`), the two side by side claim by claim.
"""

from __future__ import annotations

import os
import shutil
import struct
import textwrap
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from xml.etree import ElementTree

import jinja2
from latex2mathml.converter import convert_to_element
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

import gradfail
from gradfail import registry
from gradfail.compare import comparison
from gradfail.experiment import (
    SCALES,
    claim_counts,
    is_sanity,
    judged_on_two_seed_sets,
    second_seed_set,
)
from gradfail.errors import StoreError
from gradfail.store import FINISHED, Store


def latest_runs(store: Store) -> list[dict]:
    """The newest finished run of each experiment (done, diverged or failed), in catalogue order
    (unregistered names last); `later_attempt` names a newer attempt that is running or was
    interrupted. Its claims, with their ids and current statements (`registry.restated`), are
    judged beside its replicate's on a second seed set where the store holds one
    (`judged_on_two_seed_sets`; the replicate's id under `replicate`). Replicates are never
    shown on their own."""
    latest: dict[str, dict] = {}
    attempts: dict[str, dict] = {}
    for run in store.runs():
        if "replicate_of_seed" in run["about"]:
            continue
        if run["status"] in FINISHED:
            latest[run["experiment"]] = run
            attempts.pop(run["experiment"], None)
        else:
            attempts[run["experiment"]] = run
    for name, attempt in attempts.items():  # an experiment only ever attempted is shown so
        latest.setdefault(name, attempt)
    for run in latest.values():
        attempt = attempts.get(run["experiment"])
        run["later_attempt"] = None if attempt is None or attempt is run else {
            "id": attempt["id"], "status": attempt["status"]}
        replicate = store.replicate(run["id"], second_seed_set(run["seed"]))
        run["replicate"] = None if replicate is None else replicate["id"]
        run["claims"] = judged_on_two_seed_sets(registry.restated(run["experiment"],
                                                                  run["claims"]),
                                                replicate and replicate["claims"])
    order = list(registry.experiments())
    return sorted(latest.values(), key=lambda run: (
        order.index(run["experiment"]) if run["experiment"] in order else len(order),
        run["experiment"]))


# -- descriptions: Markdown inline (`code`, $TeX$ as MathML); everything else escaped -----------
MATH_ATTRIBUTES = ("display", "mathvariant", "stretchy", "fence", "separator", "lspace", "rspace",
                   "minsize", "maxsize", "columnalign", "columnspacing", "rowspacing",
                   "linethickness", "accent", "movablelimits", "width", "height", "depth")


def _math_inline(state, silent: bool) -> bool:
    """`$...$` as inline TeX; its content neither starts nor ends with a space, so "$5 and $6"
    stays text."""
    start = state.pos
    if state.src[start] != "$":
        return False
    end = state.src.find("$", start + 1)
    while end != -1 and state.src[end - 1] == "\\":
        end = state.src.find("$", end + 1)
    content = state.src[start + 1:end] if end != -1 else ""
    if not content or content != content.strip():
        return False
    if not silent:
        state.push("math_inline", "math", 0).content = content
    state.pos = end + 1
    return True


def mathml(tex: str) -> str:
    """Inline TeX as MathML, serialised here so that every text is escaped and only
    presentation attributes are kept (no links, no namespace URL); TeX it cannot read is shown
    as code."""
    try:
        element = convert_to_element(tex, xmlns="", display="inline")
    except Exception:  # latex2mathml raises many kinds on TeX it does not know
        return f'<code class="math">{escape(tex)}</code>'
    for node in element.iter():
        node.attrib = {k: v for k, v in node.attrib.items() if k in MATH_ATTRIBUTES}
        node.text = node.text and unescape(node.text)  # its entities, escaped again below
        node.tail = node.tail and unescape(node.tail)
    return ElementTree.tostring(element, encoding="unicode", short_empty_elements=False)


# No emphasis: the docstrings' stars and underscores are maths (v*ᵀx + b*, x_i), kept as text.
MARKDOWN = MarkdownIt("zero", {"html": False}).enable(["backticks", "escape"])
MARKDOWN.inline.ruler.before("escape", "math_inline", _math_inline)
MARKDOWN.add_render_rule("math_inline", lambda self, tokens, i, options, env: mathml(
    tokens[i].content))


def markdown(paragraph: str) -> Markup:
    """One description paragraph as HTML: inline code, escapes and $TeX$ only (no emphasis,
    links, images or raw HTML)."""
    return Markup(MARKDOWN.renderInline(paragraph))


def is_wide(path: Path) -> bool:
    """Whether a PNG is much wider than tall (several panels side by side): shown full width."""
    with open(path, "rb") as file:
        header = file.read(24)
    if len(header) < 24 or header[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    width, height = struct.unpack(">II", header[16:24])
    return width > 1.6 * height


def section(run: dict, out_dir: Path) -> dict:
    """One experiment's section, from what the store holds of its run (a run stored before its
    title and command were stored with it shows its name); its figure files are copied beside
    the report, each with its stored caption (for a figure stored before captions were, the
    registered experiment's caption of that figure; a path of None for a file that is gone)."""
    about = run["about"]
    registered = registry.experiments().get(run["experiment"])
    figures = {}
    for name, path in run["figures"].items():
        source = Path(path)
        figures[name] = {"path": None, "wide": False, "caption": run["captions"].get(name) or (
            registered.captions.get(name) if registered else None)}
        if source.exists():
            target = out_dir / "figures" / f"{run['id']}-{run['experiment']}-{name}.png"
            partial = target.with_suffix(".partial.png")
            shutil.copyfile(source, partial)
            os.replace(partial, target)  # the previous report's copy stays whole until then
            figures[name] |= {"path": target.relative_to(out_dir).as_posix(),
                              "wide": is_wide(target)}
    return {
        "run": run,
        "anchor": run["experiment"],
        "title": about.get("title", run["experiment"]),
        "section": about.get("section", ""),
        "description": [markdown(p) for p in about.get("description", [])],
        "figures": figures,
        "counts": claim_counts(run["claims"]),
        "empirical": [c | {"why": registry.verdict_reason(run["experiment"], c)}
                      for c in run["claims"] if not is_sanity(c)],
        "sanity": [c for c in run["claims"] if is_sanity(c)],
        "command": about.get("command", f"gradfail run {run['experiment']} --scale "
                                        f"{run['scale']}"),
    }


def verdict_history(checks: list[dict]) -> dict[str, list[tuple[int, int]]]:
    """Each verdict's stretches of raised checks, as (first step, last step) pairs."""
    stretches: dict[str, list[list[int]]] = {}
    previous: set[str] = set()
    for check in checks:
        for name in check["raised"]:
            if name in previous:
                stretches[name][-1][1] = check["step"]
            else:
                stretches.setdefault(name, []).append([check["step"], check["step"]])
        previous = set(check["raised"])
    return {name: [tuple(s) for s in found] for name, found in stretches.items()}


def doctor_session(session: dict) -> dict:
    """A stored doctor session (gradfail doctor --store, or Doctor.report(store=...)) for the
    report: its verdicts, when each was raised, what was measured, and the figure of its
    history (gradfail.doctor.timeline, as a data: URI; None for a session stored without one)."""
    from gradfail.doctor.timeline import data_uri

    document = session["document"]
    return {"id": session["id"], "name": session["name"], "started_at": session["started_at"],
            "figure": data_uri(session.get("history") or [], document.get("verdicts", [])),
            "optimizer": document.get("optimizer"), "steps": document.get("steps"),
            "verdicts": document.get("verdicts", []),
            "history": verdict_history(document.get("history", [])),
            "coverage": document.get("coverage", {})}


def sanity_totals(checks: list[dict]) -> dict[str, int]:
    """Sanity checks passed and broken (a broken one is a bug, not a result)."""
    return {"passed": sum(c["verdict"] == "holds" for c in checks),
            "broken": sum(c["verdict"] == "fails" for c in checks)}


# -- at a glance: what needs attention, and the table of contents ------------------------------
WING_TITLES = {"paper": "The paper's four failures", "classic": "The classic difficulties",
               "exact": "Exact training", "distributed": "Asynchronous SGD",
               "notes": "The notes' open questions", "doctor": "The doctor"}
OTHER_TITLE = "Other experiments"


def shorten(text: str | None, width: int = 160) -> str:
    return textwrap.shorten(text or "", width=width, placeholder=" …")


def needs_attention(sections: list[dict]) -> list[dict]:
    """One line per empirical claim that fails or is inconclusive, per broken sanity check and
    per run that did not finish, in the report's order, each linked to its section."""
    lines = []
    for s in sections:
        where = {"anchor": s["anchor"], "experiment": s["run"]["experiment"]}
        if s["run"]["status"] != "done":
            lines.append(where | {"kind": "run", "claim": f"the run {s['run']['status']}",
                                  "paper": "", "measured": shorten(s["run"]["error"]),
                                  "verdict": s["run"]["status"], "why": ""})
        flagged = [(c, c["verdict"]) for c in s["empirical"] if c["verdict"] in (
            "fails", "inconclusive")] + [(c, "broken: a bug") for c in s["sanity"]
                                         if c["verdict"] == "fails"]
        lines += [where | {"kind": claim["kind"], "claim": claim["name"],
                           "paper": shorten(claim["paper"], 100),
                           "measured": shorten(claim["detail"]), "verdict": verdict,
                           "why": claim.get("why", "")}
                  for claim, verdict in flagged]
    return lines


def provisional_scales(sections: list[dict]) -> list[str]:
    """The scales below the default among the shown runs (their verdicts are provisional)."""
    below = SCALES[:SCALES.index("default")]
    return [scale for scale in below if any(s["run"]["scale"] == scale for s in sections)]


def wing(experiment: str) -> str | None:
    """The part of the mission an experiment belongs to: its module's package under
    `gradfail.experiments` (None for an experiment no longer registered)."""
    known = registry.experiments().get(experiment)
    parts = known.run.__module__.split(".") if known else []
    return parts[2] if len(parts) > 3 and parts[:2] == ["gradfail", "experiments"] else None


def contents(sections: list[dict], sessions: list[dict], attention: list[dict]) -> list[dict]:
    """The table of contents: the sections grouped by the mission's parts, in the report's
    order, the doctor sessions with the doctor; each entry with its count of lines needing
    attention."""
    groups: dict[str | None, dict] = {}

    def entry(group: str | None, anchor: str, title: str) -> None:
        name = WING_TITLES.get(group, OTHER_TITLE if group is None else group.capitalize())
        groups.setdefault(group, {"id": f"toc-{group or 'other'}", "title": name, "entries": []})
        groups[group]["entries"].append({"anchor": anchor, "title": title, "attention": sum(
            line["anchor"] == anchor for line in attention)})

    for s in sections:
        entry(wing(s["run"]["experiment"]), s["anchor"], s["title"])
    for d in sessions:
        entry("doctor", f"doctor-session-{d['id']}", f"doctor session: {d['name']}")
    return list(groups.values())


def writable_folder(folder: str | Path, what: str) -> Path:
    """`folder`, made if missing; a one-line error when it is a file or cannot be written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise StoreError(f"cannot write {what} into {folder}: it is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot write {what} into {folder}: {error.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise StoreError(f"cannot write {what} into {folder}: permission denied")
    return folder


def templates() -> jinja2.Environment:
    """The package's templates, every text escaped, an undefined name an error."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("gradfail", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)


def write_report(store: Store, out_dir: str | Path, compare_with: Store | None = None) -> Path:
    """Render the report of `store` into `out_dir`; returns the path of index.html. With
    `compare_with`, another store's latest runs are set beside this one's, claim by claim."""
    out_dir = writable_folder(out_dir, "the report")
    writable_folder(out_dir / "figures", "the report")
    runs = latest_runs(store)
    sections = [section(run, out_dir) for run in runs]
    compared = None if compare_with is None else comparison(
        store.path, runs, compare_with.path, latest_runs(compare_with))
    sessions = [doctor_session(s) for s in store.doctor_sessions(with_history=True)]
    attention = needs_attention(sections)
    html = templates().get_template("report.html.j2").render(
        sections=sections, store=str(store.path), version=gradfail.__version__,
        sessions=sessions, attention=attention, toc=contents(sections, sessions, attention),
        provisional=provisional_scales(sections), compared=compared,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        totals=claim_counts([c for s in sections for c in s["run"]["claims"]]),
        sanity=sanity_totals([c for s in sections for c in s["sanity"]]))
    index = out_dir / "index.html"
    partial = out_dir / "index.partial.html"
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, index)
    return index
