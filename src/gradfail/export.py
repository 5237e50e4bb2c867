"""`gradfail export`: the store's contents as three tidy tables that pandas, polars or DuckDB
read in one line.

    runs     one row per run: identity, status, times, provenance, config as a JSON string
    claims   one row per claim of each run, as the run stored it, with the claim's stable `id`
             (one stored before claims had ids: its stored name's slug) to pair the same claim
             across runs and renamings (replicates are their own runs; pair them by
             `runs.replicate_of_seed`)
    metrics  one row per logged point: run, part, series, step, seed index, value

`tables(store)` builds them as lists of dicts with fixed, typed columns (`COLUMNS`); `export`
writes them as CSV, JSON Lines or Parquet into a folder, each file written whole to a temporary
file and then renamed into place, and refuses before writing anything when a file it would
write is already there.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import secrets
from pathlib import Path

from gradfail.errors import ConfigError
from gradfail.experiment import claim_id
from gradfail.store import Store
from gradfail.terminal import finite_or_null

INTERVAL = {"interval_estimate": "float", "interval_low": "float", "interval_high": "float",
            "interval_confidence": "float", "interval_n": "int", "interval_method": "str"}
COLUMNS: dict[str, dict[str, str]] = {
    "runs": {"id": "int", "experiment": "str", "version": "int", "scale": "str", "seed": "int",
             "n_seeds": "int", "device": "str", "status": "str", "error": "str",
             "wall_s": "float", "attempts": "int", "started_at": "str", "finished_at": "str",
             "replicate_of_seed": "int", "git_commit": "str", "torch_version": "str",
             "config": "str"},
    "claims": {"run_id": "int", "experiment": "str", "position": "int", "id": "str",
               "name": "str", "kind": "str", "verdict": "str", "holds": "bool",
               "measured": "float", "paper": "str", "tolerance": "str", "test": "str",
               "detail": "str", **INTERVAL},
    "metrics": {"run_id": "int", "experiment": "str", "part": "str", "series": "str",
                "step": "int", "seed_index": "int", "value": "float"},
}
FORMATS = {"csv": "csv", "json": "jsonl", "parquet": "parquet"}  # format -> file extension
CASTS = {"int": int, "float": float, "str": str, "bool": bool}


def typed(table: str, row: dict) -> dict:
    """A row with exactly the table's columns, each value of its column's type or None."""
    return {column: None if row.get(column) is None else CASTS[kind](row[column])
            for column, kind in COLUMNS[table].items()}


def tables(store: Store) -> dict[str, list[dict]]:
    """The store's runs, claims and metric points as the three tables of `COLUMNS`."""
    runs, claims = [], []
    for run in store.runs():
        provenance = run["provenance"] or {}
        runs.append(typed("runs", run | {
            "replicate_of_seed": run["about"].get("replicate_of_seed"),
            "git_commit": provenance.get("git_commit"), "torch_version": provenance.get("torch"),
            "config": json.dumps(run["config"], sort_keys=True, separators=(",", ":"))}))
        for position, claim in enumerate(run["claims"]):
            row = claim | {"run_id": run["id"], "experiment": run["experiment"],
                           "position": position, "id": claim_id(claim),
                           "kind": claim.get("kind") or "empirical"}
            interval = claim.get("interval") or {}  # its estimate is the claim's measured value
            row |= {f"interval_{key}": value for key, value in interval.items()}
            row["interval_estimate"] = claim.get("measured") if interval else None
            claims.append(typed("claims", row))
    experiment = {run["id"]: run["experiment"] for run in runs}
    names = ("run_id", "part", "series", "step", "seed_index", "value")
    metrics = [typed("metrics", dict(zip(names, row, strict=True))
                     | {"experiment": experiment.get(row[0])})
               for row in store.metric_rows()]
    return {"runs": runs, "claims": claims, "metrics": metrics}


def write_csv(table: str, rows: list[dict], path: Path) -> None:
    """A CSV file with a header; None as an empty cell, booleans as true/false."""
    def cell(value):
        return "" if value is None else str(value).lower() if isinstance(value, bool) else value

    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS[table])
        writer.writerows([cell(value) for value in row.values()] for row in rows)


def write_json(table: str, rows: list[dict], path: Path) -> None:
    """JSON Lines: one JSON object a row (NaN and infinities as null)."""
    with open(path, "w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(finite_or_null(row), ensure_ascii=False, allow_nan=False)
                       + "\n")


def write_parquet(table: str, rows: list[dict], path: Path) -> None:
    """A Parquet file with the table's column types (pyarrow)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bool": pa.bool_()}
    schema = pa.schema([(column, types[kind]) for column, kind in COLUMNS[table].items()])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


WRITERS = {"csv": write_csv, "json": write_json, "parquet": write_parquet}


def require_writer(format: str) -> None:
    """A one-line error when the format's library is missing (Parquet needs pyarrow)."""
    if format not in WRITERS:
        raise ConfigError(f"unknown export format {format!r}; choose one of {', '.join(WRITERS)}")
    if format == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise ConfigError("Parquet export needs pyarrow: pip install 'gradfail[export]' "
                              "(or choose --format csv or json)") from None


def export(store_path: str | Path, out: str | Path, format: str = "csv") -> dict:
    """Write the store's three tables into the folder `out` (created if missing) as
    runs/claims/metrics.<ext>; what was written: {"format", "store", "files", "rows"}.
    Refuses, writing nothing, when any of the three files already exists."""
    store = Store(store_path, readonly=True)  # a missing store is a one-line error
    require_writer(format)
    out = Path(out)
    targets = {table: out / f"{table}.{FORMATS[format]}" for table in COLUMNS}
    there = [str(path) for path in targets.values() if path.exists() or path.is_symlink()]
    if there:
        raise ConfigError(f"refusing to overwrite {', '.join(there)}; remove them or choose "
                          "another --out")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"cannot export into {out}: it is not a folder")
    found = tables(store)
    store.close()
    temporary: dict[str, Path] = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for table, rows in found.items():
            temporary[table] = out / f".{table}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
            WRITERS[format](table, rows, temporary[table])
        for table, path in temporary.items():  # every file whole before any is in place
            os.replace(path, targets[table])
    except OSError as error:
        raise ConfigError(f"cannot write the export into {out}: {error}") from None
    finally:
        for path in temporary.values():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return {"format": format, "store": str(store.path),
            "files": {table: str(path) for table, path in targets.items()},
            "rows": {table: len(rows) for table, rows in found.items()}}


def print_written(written: dict) -> None:
    """The files written, a line each, with their row counts."""
    for table, path in written["files"].items():
        rows = written["rows"][table]
        print(f"{table}: {path} ({rows:,} row{'' if rows == 1 else 's'})")
