"""`gradfail doctor SCRIPT --html DIR`: one page, DIR/index.html, of every doctor the script made:
the figure of its measurements over steps (gradfail.doctor.timeline), its verdicts with their
evidence and remedy, and what was measured. The same section as a stored session has in
`gradfail report`, from the report's templates and escaping (gradfail.report); self-contained,
with each figure embedded as a data: URI, no network resource and no JavaScript.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import gradfail


def page_folder(path: str | Path) -> Path:
    """The page's folder, made before the script runs: a one-line error when it is a file or
    cannot be written (gradfail.report.writable_folder)."""
    from gradfail.report import writable_folder

    return writable_folder(path, "the doctor's page")


def write_page(doctors: list, folder: Path, script: str) -> Path:
    """Render the page of `doctors` (each as gradfail.report.doctor_session shows a stored
    session) into `folder`; returns the path of index.html."""
    from gradfail.report import doctor_session, templates

    generated = datetime.now(UTC)
    sessions = [doctor_session({"id": i, "name": doctor.name, "document": doctor.summary(),
                                "history": doctor.history,
                                "started_at": generated.isoformat(timespec="seconds")})
                for i, doctor in enumerate(doctors, 1)]
    html = templates().get_template("doctor.html.j2").render(
        sessions=sessions, script=script, version=gradfail.__version__,
        generated=generated.strftime("%Y-%m-%d %H:%M UTC"))
    index, partial = folder / "index.html", folder / "index.partial.html"
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, index)  # a previous page stays whole until then
    return index
