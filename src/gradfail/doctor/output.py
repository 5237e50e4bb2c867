"""The doctor's words: its JSON document, its table, and a session in the store. Nothing here
decides a verdict (gradfail.doctor.rules does)."""

from __future__ import annotations

from dataclasses import asdict


def document(doctor) -> dict:
    """One doctor's part of `gradfail doctor --json`: model, optimizer, steps, the verdicts
    (most confident first), what was and was not measured, and the verdicts standing at each
    check."""
    return {"model": doctor.name, "optimizer": type(doctor.optimizer).__name__
            if doctor.optimizer is not None else None, "steps": len(doctor.history),
            "verdicts": [asdict(v) | {"layers": list(v.layers)} for v in doctor.diagnose()],
            "coverage": doctor.coverage(), "history": doctor.timeline.checks}


def print_table(doctor, found, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"gradfail doctor: {doctor.name} ({len(doctor.history)} steps)",
                  show_lines=True)
    for column in ("verdict", "confidence", "since step", "evidence", "remedy"):
        table.add_column(column)
    for verdict in found:
        table.add_row(verdict.name, f"{verdict.confidence:.2f}",
                      "–" if verdict.onset_step is None else str(verdict.onset_step),
                      verdict.evidence, verdict.remedy)
    console = console or Console()
    console.print(table)
    covered = doctor.coverage()
    console.print(f"measured: per-sample norms on {covered['per_sample_norms']:.0%} of the "
                  f"parameters; {len(covered['activations'])} activation sites; curvature "
                  f"{covered['curvature']}" + "".join(
                      f"; {name} failed ({error})" for name, error in
                      covered["failures"].items()) + (f"; {covered['wrapper']}"
                                                      if covered["wrapper"] else ""))


def save(store, doctor) -> int:
    """The session in the store's doctor_sessions table: its document and its measurements."""
    from gradfail.runner import provenance

    return store.save_doctor_session(doctor.name, document(doctor), doctor.history,
                                     provenance(doctor.params[0].device))


def say(name: str, step: int, verdict, console=None) -> None:
    """A verdict as it begins: one line on stderr with the step, the name, the evidence and the
    remedy (soft-wrapped: the terminal folds it, the line stays one line in a log)."""
    from rich.console import Console
    from rich.text import Text

    line = Text.assemble(("gradfail doctor", "bold"), f" [{name}] step {step}: ",
                         (verdict.name, "bold red"), f" (since step {verdict.onset_step}, "
                         f"confidence {verdict.confidence:.2f}): {verdict.evidence}; ",
                         ("remedy: ", "bold"), verdict.remedy)
    (console or Console(stderr=True)).print(line, soft_wrap=True)


def verdict_markdown(verdict, step: int) -> str:
    """A verdict as it begins, for a logger's text panel (TensorBoard's TEXT tab)."""
    layers = f" (layers: {', '.join(verdict.layers)})" if verdict.layers else ""
    return (f"**{verdict.name}** at step {step}, since step {verdict.onset_step}, confidence "
            f"{verdict.confidence:.2f}{layers}\n\n{verdict.evidence}\n\n*remedy:* "
            f"{verdict.remedy}")


def document_markdown(found: dict) -> str:
    """The end-of-run verdicts of a doctor's document as a Markdown table."""
    def cell(text) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")
    rows = [f"| {v['name']} | {v['confidence']:.2f} | "
            f"{'–' if v['onset_step'] is None else v['onset_step']} | "
            f"{cell(v['evidence'])} | {cell(v['remedy'])} |" for v in found["verdicts"]]
    return "\n".join([f"gradfail doctor: {found['model']} ({found['steps']} steps)", "",
                      "| verdict | confidence | since step | evidence | remedy |",
                      "|---|---|---|---|---|", *rows])
