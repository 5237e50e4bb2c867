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
                      covered["failures"].items()))


def save(store, doctor) -> int:
    """The session in the store's doctor_sessions table: its document and its measurements."""
    from gradfail.runner import provenance

    return store.save_doctor_session(doctor.name, document(doctor), doctor.history,
                                     provenance(doctor.params[0].device))
