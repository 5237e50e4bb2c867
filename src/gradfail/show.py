"""`gradfail show NAME`: everything about one experiment without running it.

`describe(experiment)` collects it as one JSON-ready dict: title, section and citation, the
description, the source file, every setting (its type, its description and its value at each
scale, with the scales where it differs from the default one), the seeds per scale, the claims
with their ids and the statistical test each is judged by, and the figures a run draws with
what to see in each. `print_description` lays that dict out on the terminal.
"""

from __future__ import annotations

import inspect
import json
import sys
import types
import typing
from pathlib import Path

from gradfail.experiment import SCALES, Experiment
from gradfail.terminal import console, plain


def readable_type(annotation) -> str:
    """A config field's type as a person writes it: `list[int]`, `int | None`, `'a' | 'b'`
    (validation constraints, `Annotated[...]`, are left out)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return readable_type(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(readable_type(arg) for arg in args)
    if origin is typing.Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(readable_type(arg) for arg in args)}]" if args else name
    if annotation is type(None) or annotation is None:
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def source_file(experiment: Experiment) -> str:
    """The path of the module that defines the experiment."""
    return str(Path(inspect.getsourcefile(sys.modules[experiment.run.__module__])))


def settings(experiment: Experiment) -> list[dict]:
    """Every config field: name, readable type, description and value at each scale (as
    `experiment.config(scale)` resolves it), with the scales whose value is not the default's."""
    resolved = {scale: experiment.config(scale).model_dump(mode="json") for scale in SCALES}
    rows = []
    for name, field in experiment.config_class.model_fields.items():
        values = {scale: resolved[scale][name] for scale in SCALES}
        rows.append({"name": name, "type": readable_type(field.annotation),
                     "description": field.description or "", "values": values,
                     "differs_from_default": [scale for scale in SCALES
                                              if values[scale] != values["default"]]})
    return rows


def describe(experiment: Experiment) -> dict:
    """Everything `gradfail show` says about an experiment, as one JSON-ready dict."""
    return {
        "name": experiment.name,
        "title": experiment.title,
        "section": experiment.section,
        "version": experiment.version,
        "description": experiment.description,
        "source": source_file(experiment),
        "module": experiment.run.__module__,
        "seeds": dict(experiment.seeds),
        "settings": settings(experiment),
        "claims": [{"id": claim.id, "name": claim.name, "kind": claim.kind,
                    "paper": claim.paper, "tolerance": claim.tolerance, "test": claim.test}
                   for claim in experiment.claims],
        "figures": [{"name": name, "caption": caption}
                    for name, caption in experiment.captions.items()],
        "run": f"gradfail run {experiment.name} --scale quick",
    }


def shown_value(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def print_description(found: dict) -> None:
    """The dict of `describe` as a terminal page: heading, description, settings, claims,
    figures."""
    from rich.table import Table

    out = console()
    out.print(f"[bold]{plain(found['name'])}[/]: {plain(found['title'])}")
    out.print(f"[dim]section:[/] {plain(found['section'])} [dim]· version {found['version']}[/]")
    for paragraph in found["description"]:
        out.print()
        out.print(plain(paragraph))
    out.print()
    out.print(f"[dim]source:[/] {plain(found['source'])}")
    out.print("[dim]seeds:[/] " + ", ".join(f"{found['seeds'][scale]} at {scale}"
                                             for scale in SCALES if scale in found["seeds"]))
    out.print(f"[dim]try it:[/] {plain(found['run'])}")

    table = Table(title="settings (--set KEY=VALUE; * differs from the default scale)",
                  show_lines=True)
    table.add_column("setting", ratio=2, overflow="fold")
    for scale in SCALES:
        table.add_column(scale, ratio=1, overflow="fold")
    for row in found["settings"]:
        cells = [plain(shown_value(row["values"][scale]))
                 + (" [bold yellow]*[/]" if scale in row["differs_from_default"] else "")
                 for scale in SCALES]
        about = f"\n{plain(row['description'])}" if row["description"] else ""
        table.add_row(f"[bold]{plain(row['name'])}[/] [dim]{plain(row['type'])}[/]{about}",
                      *cells)
    out.print(table)

    out.print()
    out.print("[bold]claims[/] [dim](a sanity check is an identity only a bug can break; "
              "never counted)[/]")
    for claim in found["claims"]:
        kind = "[dim]sanity check[/]" if claim["kind"] == "sanity" else "empirical"
        out.print(f"\n• [bold]{plain(claim['name'])}[/] ({kind}) [dim]id {plain(claim['id'])}[/]")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for label, key in (("the paper", "paper"), ("tolerance", "tolerance"),
                           ("judged by", "test")):
            if claim[key]:
                grid.add_row(f"  {label}", plain(claim[key]))
        out.print(grid)

    out.print()
    out.print("[bold]figures[/] [dim](what to see in each)[/]")
    for figure in found["figures"]:
        out.print(f"• [bold]{plain(figure['name'])}[/]: {plain(figure['caption'])}")
