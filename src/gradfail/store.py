"""The results store: one SQLite file (standard library) with runs, parts, metrics, claims, figures.

Every write is one transaction, so a run killed at any moment leaves either its previous state
or its next one, never half of a row. A run's finished parts are kept, so running the same
(experiment, version, config, seed, seeds, device) again resumes where it stopped. A file that
is not a gradfail store is refused, never overwritten.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gradfail.errors import StoreError

DEFAULT_PATH = Path("results/gradfail.sqlite")
APPLICATION_ID = 0x67726466  # "grdf": marks a SQLite file as a gradfail store
SCHEMA_VERSION = 3  # 2: doctor_sessions; 3: what the report says of a run, stored with it
COMPLETE = ("done", "diverged")  # a rerun of the same identity skips these

SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    experiment TEXT NOT NULL,
    version INTEGER NOT NULL,
    scale TEXT NOT NULL,
    config TEXT NOT NULL,
    seed INTEGER NOT NULL,
    n_seeds INTEGER NOT NULL,
    device TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'diverged')),
    error TEXT,
    provenance TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    wall_s REAL,
    attempts INTEGER NOT NULL DEFAULT 1,
    result TEXT,
    about TEXT,
    UNIQUE (experiment, version, config, seed, n_seeds, device)
);
CREATE TABLE parts (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    result TEXT NOT NULL,
    wall_s REAL NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    part TEXT,
    series TEXT NOT NULL,
    step INTEGER NOT NULL,
    seed_index INTEGER NOT NULL,
    value REAL
);
CREATE INDEX metrics_by_run ON metrics (run_id, series);
CREATE TABLE claims (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    position INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE TABLE figures (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""
DOCTOR_SESSIONS = """
CREATE TABLE doctor_sessions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    history TEXT NOT NULL,
    provenance TEXT NOT NULL,
    started_at TEXT NOT NULL
);
"""
SCHEMA += DOCTOR_SESSIONS
MIGRATIONS = {1: DOCTOR_SESSIONS,  # from a schema version to the next
              2: "ALTER TABLE runs ADD COLUMN about TEXT"}


@dataclass(frozen=True)
class RunIdentity:
    """What makes two runs the same run: a rerun of a complete identity is skipped."""

    experiment: str
    version: int
    config: str  # canonical JSON of the resolved config
    seed: int
    n_seeds: int
    device: str


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    """A gradfail results store at `path` (created on first use)."""

    def __init__(self, path: str | Path = DEFAULT_PATH):
        self.path = Path(path)
        self.figures_dir = self.path.parent / "figures"
        self._db = self._open()

    # -- opening -------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise StoreError(f"cannot use the store at {self.path}: it is a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot write the store at {self.path}: {error}") from None
        try:
            application_id = db.execute("PRAGMA application_id").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as error:
            db.close()
            raise StoreError(
                f"{self.path} is not a gradfail store ({error}); refusing to touch it"
            ) from None
        if tables and application_id != APPLICATION_ID:
            db.close()
            raise StoreError(
                f"{self.path} is a SQLite file of another program; refusing to touch it"
            )
        try:
            if not tables:
                with self._transaction(db):
                    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            else:
                with self._transaction(db):  # takes the write lock: proves the file is writable
                    self._migrate(db)
            db.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as error:
            db.close()
            raise StoreError(f"cannot write the store at {self.path}: {error}") from None
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer gradfail (schema {version}, "
                             f"this one reads {SCHEMA_VERSION}); refusing to touch it")
        for old in range(max(version, 1), SCHEMA_VERSION):
            db.execute(MIGRATIONS[old])
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @staticmethod
    @contextmanager
    def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def transaction(self) -> Any:
        return self._transaction(self._db)

    def close(self) -> None:
        self._db.close()

    # -- runs ----------------------------------------------------------------------------------
    def find_run(self, identity: RunIdentity) -> dict | None:
        row = self._db.execute(
            "SELECT id, status FROM runs WHERE experiment=? AND version=? AND config=?"
            " AND seed=? AND n_seeds=? AND device=?",
            _identity_values(identity),
        ).fetchone()
        return None if row is None else {"id": row[0], "status": row[1]}

    def begin_run(self, identity: RunIdentity, scale: str, provenance: dict,
                  about: dict | None = None) -> int:
        """A new `running` row, or the existing incomplete row set running again (resume).
        `about`: what the report says of the run (title, section, description, command)."""
        about_json = None if about is None else json.dumps(about)
        with self.transaction() as db:
            found = self.find_run(identity)
            if found is not None:
                db.execute(
                    "UPDATE runs SET status='running', error=NULL, attempts=attempts+1,"
                    " provenance=?, about=? WHERE id=?",
                    (json.dumps(provenance), about_json, found["id"]),
                )
                return found["id"]
            cursor = db.execute(
                "INSERT INTO runs (experiment, version, config, seed, n_seeds, device, scale,"
                " status, provenance, started_at, about) VALUES (?,?,?,?,?,?,?, 'running', ?, ?, ?)",
                (*_identity_values(identity), scale, json.dumps(provenance), now(), about_json),
            )
            return int(cursor.lastrowid)

    def finish_run(
        self,
        run_id: int,
        status: str,
        wall_s: float,
        result: dict | None = None,
        claims: list[dict] = (),
        figures: dict[str, str] | None = None,
        error: str | None = None,
        metrics: list[tuple] = (),
    ) -> None:
        """Close a run in one transaction: its status, result, claims and figure paths."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status=?, error=?, result=?, finished_at=?, wall_s=? WHERE id=?",
                (status, error, None if result is None else json.dumps(result), now(), wall_s,
                 run_id),
            )
            db.execute("DELETE FROM claims WHERE run_id=?", (run_id,))
            db.executemany(
                "INSERT INTO claims (run_id, position, record) VALUES (?,?,?)",
                [(run_id, i, json.dumps(claim)) for i, claim in enumerate(claims)],
            )
            db.execute("DELETE FROM figures WHERE run_id=?", (run_id,))
            db.executemany(
                "INSERT INTO figures (run_id, name, path) VALUES (?,?,?)",
                [(run_id, name, path) for name, path in (figures or {}).items()],
            )
            _insert_metrics(db, run_id, None, metrics)

    # -- parts: the resumable pieces of a run ----------------------------------------------------
    def load_part(self, run_id: int, key: str) -> dict | None:
        row = self._db.execute(
            "SELECT result FROM parts WHERE run_id=? AND key=?", (run_id, key)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def save_part(
        self, run_id: int, key: str, result: dict, metrics: list[tuple], wall_s: float
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO parts (run_id, key, result, wall_s, finished_at) VALUES (?,?,?,?,?)",
                (run_id, key, json.dumps(result), wall_s, now()),
            )
            _insert_metrics(db, run_id, key, metrics)

    def part_wall_s(self, run_id: int, key: str) -> float:
        return self._db.execute("SELECT wall_s FROM parts WHERE run_id=? AND key=?",
                                (run_id, key)).fetchone()[0]

    def parts(self, run_id: int) -> list[dict]:
        rows = self._db.execute(
            "SELECT key, wall_s, finished_at FROM parts WHERE run_id=? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [{"key": k, "wall_s": w, "finished_at": f} for k, w, f in rows]

    # -- doctor sessions: a user's training watched by gradfail.doctor -------------------------
    def save_doctor_session(self, name: str, document: dict, history: list[dict],
                            provenance: dict) -> int:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO doctor_sessions (name, document, history, provenance, started_at)"
                " VALUES (?,?,?,?,?)", (name, json.dumps(document), json.dumps(history),
                                        json.dumps(provenance), now()))
            return int(cursor.lastrowid)

    def doctor_sessions(self, with_history: bool = False) -> list[dict]:
        """The stored doctor sessions, oldest first (with their quantity histories if asked)."""
        rows = self._db.execute("SELECT id, name, document, started_at, "
                                + ("history" if with_history else "NULL")
                                + " FROM doctor_sessions ORDER BY id").fetchall()
        return [{"id": i, "name": n, "document": json.loads(d), "started_at": t}
                | ({"history": json.loads(h)} if with_history else {})
                for i, n, d, t, h in rows]

    # -- reading -------------------------------------------------------------------------------
    def runs(self, experiment: str | None = None, run_id: int | None = None) -> list[dict]:
        """Stored runs (newest last), all or of one experiment or id, with claims and figures."""
        filters = {"experiment": experiment, "id": run_id}
        where = [f"{column}=?" for column, value in filters.items() if value is not None]
        query = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        cursor = self._db.execute(query + " ORDER BY id",
                                  [value for value in filters.values() if value is not None])
        names = [column[0] for column in cursor.description]
        runs = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        for run in runs:
            run["config"] = json.loads(run["config"])
            run["provenance"] = json.loads(run["provenance"])
            run["result"] = None if run["result"] is None else json.loads(run["result"])
            run["about"] = {} if run["about"] is None else json.loads(run["about"])
            run["claims"] = self.claims(run["id"])
            run["figures"] = dict(
                self._db.execute(
                    "SELECT name, path FROM figures WHERE run_id=? ORDER BY rowid", (run["id"],)
                ).fetchall()
            )
        return runs

    def replicate(self, run_id: int, seed: int) -> dict | None:
        """The finished run that repeats run `run_id` on base seed `seed` (the same experiment,
        version, config, number of seeds and device), if the store holds one."""
        row = self._db.execute(
            "SELECT b.id FROM runs a JOIN runs b ON a.experiment=b.experiment AND"
            " a.version=b.version AND a.config=b.config AND a.n_seeds=b.n_seeds AND"
            " a.device=b.device WHERE a.id=? AND b.seed=? AND b.status='done'", (run_id, seed),
        ).fetchone()
        return None if row is None else self.run(row[0])

    def run(self, run_id: int) -> dict:
        matches = self.runs(run_id=run_id)
        if not matches:
            raise StoreError(f"no run {run_id} in {self.path}")
        return matches[0]

    def claims(self, run_id: int) -> list[dict]:
        rows = self._db.execute(
            "SELECT record FROM claims WHERE run_id=? ORDER BY position", (run_id,)
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def metric(self, run_id: int, series: str) -> list[tuple[int, int, float]]:
        """(step, seed index, value) rows of one metric series of a run."""
        return self._db.execute(
            "SELECT step, seed_index, value FROM metrics WHERE run_id=? AND series=?"
            " ORDER BY seed_index, step",
            (run_id, series),
        ).fetchall()


def _identity_values(identity: RunIdentity) -> tuple:
    return (identity.experiment, identity.version, identity.config, identity.seed,
            identity.n_seeds, identity.device)


def _insert_metrics(db: sqlite3.Connection, run_id: int, part: str | None, rows: list[tuple]):
    db.executemany(
        "INSERT INTO metrics (run_id, part, series, step, seed_index, value) VALUES (?,?,?,?,?,?)",
        [(run_id, part, *row) for row in rows],
    )
