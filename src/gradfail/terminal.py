"""What the command line prints: stored text shown as it is, strictly valid JSON, verdicts
and statuses in colour, the claims as Markdown, a run's outcome."""

from __future__ import annotations

import json
import math

from gradfail.experiment import claim_counts, is_sanity

VERDICT_STYLE = {"holds": "green", "fails": "red", "inconclusive": "magenta",
                 "not checked": "yellow"}
STATUS_STYLE = {"done": "green", "failed": "red", "diverged": "magenta", "running": "yellow",
                "interrupted": "yellow"}


def plain(text) -> str:
    """Stored or user-given text, shown as it is (rich markup in it is not interpreted)."""
    from rich.markup import escape

    return escape(str(text))


def finite_or_null(value):
    """Non-finite floats become None (JSON has no NaN or Infinity), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value


def print_json(document) -> None:
    """One strictly valid JSON document on stdout (NaN and infinities as null)."""
    print(json.dumps(finite_or_null(document), indent=2, ensure_ascii=False, allow_nan=False,
                     default=lambda value: finite_or_null(float(value))))


def console():
    from rich.console import Console

    return Console()


def needs_attention(claim: dict) -> bool:
    """An empirical claim that fails or is inconclusive, or a broken sanity check."""
    return claim["verdict"] == "fails" or (claim["verdict"] == "inconclusive"
                                           and not is_sanity(claim))


def markdown_claims(runs: list[dict]) -> str:
    """The claims as two Markdown tables: empirical claims with their verdicts, and the sanity
    checks apart (an identity only a bug can break; never counted)."""
    def cell(text) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    def stability(claim: dict) -> str:
        return {True: " (same on a second seed set)", False: " (seed sets disagree)"}.get(
            claim.get("stable"), "")

    lines = ["| experiment | claim | paper | measured | verdict |", "|---|---|---|---|---|"]
    from gradfail.registry import verdict_reason

    def why(run: dict, claim: dict) -> str:
        return f": {cell(verdict_reason(run['experiment'], claim))}" if claim[
            "verdict"] == "fails" else ""

    lines += [f"| `{run['experiment']}` | {cell(c['name'])} | {cell(c['paper'])} | "
              f"{cell(c['detail'])} | **{c['verdict']}**{stability(c)}{why(run, c)} |"
              for run in runs for c in run["claims"] if not is_sanity(c)]
    lines += ["", "| experiment | sanity check | what must hold | measured | result |",
              "|---|---|---|---|---|"]
    lines += [f"| `{run['experiment']}` | {cell(c['name'])} | {cell(c['paper'])} | "
              f"{cell(c['detail'])} | {'passed' if c['verdict'] == 'holds' else c['verdict']} |"
              for run in runs for c in run["claims"] if is_sanity(c)]
    return "\n".join(lines)


def styled_verdict(claim: dict) -> str:
    """A claim's verdict in colour; a sanity check reads "sanity: passed", or, failed, as the
    bug it is."""
    if is_sanity(claim):
        return ("[dim]sanity: passed[/]" if claim["verdict"] == "holds" else
                "[bold red]sanity check broken: a bug[/]" if claim["verdict"] == "fails" else
                f"[dim]sanity: {claim['verdict']}[/]")
    return f"[{VERDICT_STYLE[claim['verdict']]}]{claim['verdict']}[/]"


def styled_status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def counted(claims: list[dict]) -> str:
    return ", ".join(f"{n} {verdict}" for verdict, n in claim_counts(claims).items() if n) or "–"


def print_outcome(outcome) -> None:
    from rich.table import Table

    out = console()
    how = "stored earlier" if outcome.cached else f"{outcome.wall_s:.1f}s"
    if outcome.resumed_parts:
        how += f", resumed {len(outcome.resumed_parts)} stored parts"
    second = "" if outcome.replicate_of is None else " on the second seed set"
    out.print(f"[bold]{plain(outcome.experiment)}[/] run {outcome.id} ({outcome.scale}, "
              f"{outcome.n_seeds} seeds{second}): {styled_status(outcome.status)} ({how})")
    if outcome.error:
        out.print(f"  {plain(outcome.error)}")
    if outcome.claims and outcome.replicate_of is None:
        table = Table(show_lines=False)
        for column in ("claim", "paper", "measured", "verdict"):
            table.add_column(column, overflow="fold")
        for claim in sorted(outcome.claims, key=is_sanity):
            table.add_row(plain(claim["name"]), plain(claim["paper"]), plain(claim["detail"]),
                          styled_verdict(claim))
        out.print(table)
    for name, path in outcome.figures.items():
        out.print(f"  figure {plain(name)}: {plain(path)}")


def print_costs_table(found: dict, scale: str, jobs: int) -> None:
    """A plan's estimated times (`gradfail.costs.plan_costs`) as a table and a line of totals."""
    from rich.table import Table

    from gradfail.costs import duration

    table = Table(title=f"estimated times at {scale} scale, one thread a run "
                        f"(calibrated on {found['calibrated_on']})")
    for column in ("experiment", "seeds", "cores", "estimate"):
        table.add_column(column)
    for row in found["runs"]:
        name = row["experiment"] + (" (second seed set)" if row["second_seed_set"] else "")
        table.add_row(name, str(row["seeds"]), str(row["cores"]),
                      "stored" if row["stored"] else duration(row["estimate_s"]))
    console().print(table)
    totals, unknown = found["totals"], found["unknown"]
    print(f"in turn: {duration(totals['in_turn_s'])}; with --jobs {jobs}: "
          f"{duration(totals['jobs_s'])}; on 16 cores: {duration(totals['cores_16_s'])}"
          + (f" (not counting {', '.join(unknown)}: never calibrated)" if unknown else ""))
