"""The results store: one SQLite file (standard library) with runs, parts, metrics, claims, figures.

Every write is one transaction, so a run killed at any moment leaves either its previous state
or its next one, never half of a row. A run's finished parts are kept, so running the same
(experiment, version, config, seed, seeds, device) again resumes where it stopped. A file that
is not a gradfail store is refused, never overwritten.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gradfail import owners
from gradfail.errors import StoreError

DEFAULT_PATH = Path("results/gradfail.sqlite")
APPLICATION_ID = 0x67726466  # "grdf": marks a SQLite file as a gradfail store
SCHEMA_VERSION = 5  # 2: doctor_sessions; 3: what the report says of a run; 4: run owners;
# 5: figure captions
COMPLETE = ("done", "diverged")  # a rerun of the same identity skips these
FINISHED = ("done", "diverged", "failed")  # what the report and claims show

RUNS = """
CREATE TABLE {name} (
    id INTEGER PRIMARY KEY,
    experiment TEXT NOT NULL,
    version INTEGER NOT NULL,
    scale TEXT NOT NULL,
    config TEXT NOT NULL,
    seed INTEGER NOT NULL,
    n_seeds INTEGER NOT NULL,
    device TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'diverged',
                                           'interrupted')),
    error TEXT,
    provenance TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    wall_s REAL,
    attempts INTEGER NOT NULL DEFAULT 1,
    result TEXT,
    about TEXT,
    owner TEXT,
    heartbeat TEXT,
    UNIQUE (experiment, version, config, seed, n_seeds, device)
)"""
RUN_COLUMNS = ("id, experiment, version, scale, config, seed, n_seeds, device, status, error,"
               " provenance, started_at, finished_at, wall_s, attempts, result, about")
SCHEMA = RUNS.format(name="runs") + """;
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
    caption TEXT,
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
              2: "ALTER TABLE runs ADD COLUMN about TEXT",
              3: RUNS.format(name="runs_v4") + f"""; INSERT INTO runs_v4 ({RUN_COLUMNS})
                 SELECT {RUN_COLUMNS} FROM runs; DROP TABLE runs;
                 ALTER TABLE runs_v4 RENAME TO runs""",
              4: "ALTER TABLE figures ADD COLUMN caption TEXT"}  # older figures: NULL


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
    """A gradfail results store at `path`: created on first use for writing; `readonly` for the
    commands that only read (a missing path is then an error, never created, and a read-only
    file or folder is fine). Figures live beside it in `<name>.figures/`, recorded relative to
    the store's folder, so a store and its figures move together and two stores never share."""

    def __init__(self, path: str | Path = DEFAULT_PATH, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self.figures_dir = self.path.parent / f"{self.path.stem}.figures"
        self.schema_version = SCHEMA_VERSION  # lower only for an old store that cannot migrate
        self._db = self._open_readonly() if readonly else self._open()

    # -- opening -------------------------------------------------------------------------------
    @staticmethod
    def _connect(uri: str) -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)

    def _open_readonly(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise StoreError(f"cannot read the store at {self.path}: it is a directory")
        if not self.path.exists():
            raise StoreError(f"no store at {self.path} (run an experiment first, or give "
                             "--store)")
        if not os.access(self.path, os.R_OK):
            raise StoreError(f"cannot read the store at {self.path}: permission denied")
        version = self._identify(self._read_connection(), writing=False)
        if version < SCHEMA_VERSION and os.access(self.path, os.W_OK) and \
                os.access(self.path.parent, os.W_OK):
            self._open().close()  # an older schema is migrated once, where it may be written
        else:
            self.schema_version = version
        return self._read_connection()

    def _read_connection(self) -> sqlite3.Connection:
        """A read-only connection; `immutable` where the folder is read-only (SQLite then
        cannot make the shared-memory file a WAL reader needs)."""
        uri = self.path.resolve().as_uri()
        for options in ("?mode=ro", "?mode=ro&immutable=1"):
            db = self._connect(uri + options)
            try:
                db.execute("PRAGMA user_version").fetchone()
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return db
            except sqlite3.OperationalError:
                db.close()
            except sqlite3.DatabaseError:
                return db  # not a database at all: `_identify` says so
        raise StoreError(f"cannot read the store at {self.path}")

    def _identify(self, db: sqlite3.Connection, writing: bool) -> int:
        """Check that `db` is a gradfail store this version reads (or an empty file, when
        writing); its schema version. Closes `db` and raises a one-line error otherwise."""
        try:
            application_id = db.execute("PRAGMA application_id").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            problem = None
            if application_id not in (0, APPLICATION_ID) or (tables and not application_id):
                problem = "is a SQLite file of another program"
            elif not tables and not writing:
                problem = "is an empty file, not a gradfail store"
            elif version > SCHEMA_VERSION:
                problem = (f"was written by a newer gradfail (schema {version}, this one "
                           f"reads {SCHEMA_VERSION})")
            elif tables and version < 1:
                problem = "has no schema version: not a gradfail store"
            elif writing and tables and db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                problem = "is corrupt (PRAGMA quick_check fails)"
        except sqlite3.DatabaseError as error:
            problem = f"is not a gradfail store ({error})"
        if problem is not None:
            db.close()
            raise StoreError(f"{self.path} {problem}; refusing to touch it")
        if not writing:
            db.close()
        return version

    def _open(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise StoreError(f"cannot use the store at {self.path}: it is a directory")
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise StoreError(f"the store at {self.path} is read-only: the read commands (runs, "
                             "claims, report) can use it, nothing can be written to it")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._connect(self.path.resolve().as_uri())
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot write the store at {self.path}: {error}") from None
        version = self._identify(db, writing=True)
        try:
            with self._transaction(db):  # takes the write lock: proves the file is writable
                if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                else:
                    for old in range(max(version, 1), SCHEMA_VERSION):
                        for statement in MIGRATIONS[old].split(";"):
                            if statement.strip():
                                db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._mark_interrupted(db)
            db.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as error:
            db.close()
            raise StoreError(store_error(self.path, error)) from None
        except sqlite3.Error as error:
            db.close()
            raise StoreError(f"cannot write the store at {self.path}: {error}") from None
        return db

    @staticmethod
    def _mark_interrupted(db: sqlite3.Connection) -> None:
        """Rows left `running` by a process that has ended become `interrupted` (they resume)."""
        for run_id, owner, heartbeat in db.execute(
                "SELECT id, owner, heartbeat FROM runs WHERE status='running'").fetchall():
            owner = json.loads(owner) if owner else None
            if not owners.is_alive(owner, heartbeat):
                gone = owners.describe(owner) if owner else "a process"
                db.execute("UPDATE runs SET status='interrupted', error=? WHERE id=?",
                           (f"{gone} ended without finishing it", run_id))

    @staticmethod
    @contextmanager
    def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise StoreError(store_error(Path(db.execute("PRAGMA database_list").fetchone()[2]),
                                         error)) from None
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
        """A new `running` row owned by this process, or the existing incomplete row taken over
        (resume). A row another live process is running is refused in one line naming it.
        `about`: what the report says of the run (title, section, description, command)."""
        about_json = None if about is None else json.dumps(about)
        owner = json.dumps(owners.this_process())
        with self.transaction() as db:
            found = db.execute(
                "SELECT id, status, owner, heartbeat, started_at FROM runs WHERE experiment=?"
                " AND version=? AND config=? AND seed=? AND n_seeds=? AND device=?",
                _identity_values(identity)).fetchone()
            if found is not None:
                run_id, status, running_owner, heartbeat, started = found
                running_owner = json.loads(running_owner) if running_owner else None
                if status == "running" and owners.is_alive(running_owner, heartbeat):
                    raise StoreError(
                        f"run {run_id} ({identity.experiment}, seed {identity.seed}) is being "
                        f"run by {owners.describe(running_owner)} since {started}; wait for it "
                        "to finish or stop it")
                db.execute(
                    "UPDATE runs SET status='running', error=NULL, attempts=attempts+1,"
                    " provenance=?, about=?, owner=?, heartbeat=? WHERE id=?",
                    (json.dumps(provenance), about_json, owner, now(), run_id),
                )
                return run_id
            cursor = db.execute(
                "INSERT INTO runs (experiment, version, config, seed, n_seeds, device, scale,"
                " status, provenance, started_at, about, owner, heartbeat)"
                " VALUES (?,?,?,?,?,?,?, 'running', ?, ?, ?, ?, ?)",
                (*_identity_values(identity), scale, json.dumps(provenance), now(), about_json,
                 owner, now()),
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
        captions: dict[str, str] | None = None,
    ) -> None:
        """Close a run in one transaction: its status, result, claims, and figure paths each
        with its caption (`captions`, by figure name)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status=?, error=?, result=?, finished_at=?, wall_s=?, owner=NULL,"
                " heartbeat=NULL WHERE id=?",
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
                "INSERT INTO figures (run_id, name, path, caption) VALUES (?,?,?,?)",
                [(run_id, name, path, (captions or {}).get(name))
                 for name, path in (figures or {}).items()],
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
        """A finished part, once: the same part reported again (a retried task, or a worker
        that recomputed it) is kept as first stored (parts are deterministic in their key)."""
        with self.transaction() as db:
            inserted = db.execute(
                "INSERT OR IGNORE INTO parts (run_id, key, result, wall_s, finished_at)"
                " VALUES (?,?,?,?,?)", (run_id, key, json.dumps(result), wall_s, now()),
            ).rowcount
            db.execute("UPDATE runs SET heartbeat=? WHERE id=?", (now(), run_id))
            if inserted:
                _insert_metrics(db, run_id, key, metrics)

    def stored_parts(self, run_id: int) -> dict[str, tuple[dict, float]]:
        """Every finished part of a run: key -> (result, wall seconds), what it resumes from."""
        rows = self._db.execute("SELECT key, result, wall_s FROM parts WHERE run_id=?",
                                (run_id,)).fetchall()
        return {key: (json.loads(result), wall_s) for key, result, wall_s in rows}

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
        """Stored runs (newest last), all or of one experiment or id, with claims, figures
        (paths resolved against the store's folder) and the figures' captions where stored
        (`captions`, by figure name). A `running` row whose owner has ended
        reads as `interrupted` (a read-only store cannot be marked)."""
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
            run["owner"] = json.loads(run["owner"]) if run.get("owner") else None
            if run["status"] == "running" and not owners.is_alive(run["owner"],
                                                                    run.get("heartbeat")):
                run["status"] = "interrupted"
            run["claims"] = self.claims(run["id"])
            caption = "caption" if self.schema_version >= 5 else "NULL"  # 5 stores captions
            figures = self._db.execute(f"SELECT name, path, {caption} FROM figures WHERE"
                                       " run_id=? ORDER BY rowid", (run["id"],)).fetchall()
            run["figures"] = {name: str(self.path.parent / path) for name, path, _ in figures}
            run["captions"] = {name: caption for name, _, caption in figures if caption}
        return runs

    def figure_path(self, path: Path) -> str:
        """A figure's path as recorded: relative to the store's folder."""
        return os.path.relpath(path, self.path.parent)

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

    def metric_rows(self, run_id: int | None = None) -> list[tuple]:
        """Every stored metric point, of all runs or of one: (run_id, part, series, step,
        seed_index, value) rows in the order they were stored."""
        return self._db.execute(
            "SELECT run_id, part, series, step, seed_index, value FROM metrics"
            + ("" if run_id is None else " WHERE run_id=?") + " ORDER BY run_id, rowid",
            () if run_id is None else (run_id,),
        ).fetchall()


def store_error(path: Path, error: sqlite3.OperationalError) -> str:
    """One line for SQLite's operational errors (a lock held too long, a read-only file)."""
    text = str(error)
    if "locked" in text:
        return (f"the store at {path} has been locked by another process for over 30 s; "
                "try again when it is done")
    if "readonly" in text or "read-only" in text:
        return f"the store at {path} is read-only: nothing can be written to it"
    return f"cannot write the store at {path}: {text}"


def _identity_values(identity: RunIdentity) -> tuple:
    return (identity.experiment, identity.version, identity.config, identity.seed,
            identity.n_seeds, identity.device)


def _insert_metrics(db: sqlite3.Connection, run_id: int, part: str | None, rows: list[tuple]):
    db.executemany(
        "INSERT INTO metrics (run_id, part, series, step, seed_index, value) VALUES (?,?,?,?,?,?)",
        [(run_id, part, *row) for row in rows],
    )
