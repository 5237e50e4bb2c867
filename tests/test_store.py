"""The results store: refuses what it must not touch, writes whole rows or nothing."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys

import pytest

from gradfail.errors import StoreError
from gradfail.store import SCHEMA_VERSION, RunIdentity, Store

IDENTITY = RunIdentity("parity", 1, '{"d":5}', seed=0, n_seeds=2, device="cpu")


def test_a_file_that_is_not_a_database_is_refused_and_kept(tmp_path):
    path = tmp_path / "results.sqlite"
    path.write_bytes(b"precious notes, not a database" * 100)
    with pytest.raises(StoreError, match="not a gradfail store"):
        Store(path)
    assert path.read_bytes() == b"precious notes, not a database" * 100


def test_another_programs_database_is_refused_and_kept(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('keep me')")
    with pytest.raises(StoreError, match="another program"):
        Store(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT text FROM notes").fetchall() == [("keep me",)]


def test_unwritable_places_are_one_line_errors(tmp_path):
    with pytest.raises(StoreError, match="cannot write"):
        Store("/proc/no/such/place.sqlite")
    with pytest.raises(StoreError, match="directory"):
        Store(tmp_path)


def owned_by_a_process_that_ended(store: Store, run_id: int) -> None:
    """Hand a `running` row to a process that has since exited (as after kill -9)."""
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    owner = {"host": socket.gethostname(), "pid": int(ended.stdout), "start": None}
    with store.transaction() as db:
        db.execute("UPDATE runs SET owner=? WHERE id=?", (json.dumps(owner), run_id))


def test_a_run_resumes_with_its_parts_and_finishes_whole(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    run_id = store.begin_run(IDENTITY, "quick", {"torch": "x"})
    store.save_part(run_id, "train d=5", {"accuracy": [0.5, 1.0]}, [("acc", 0, 0, 0.5)], 1.5)
    assert store.find_run(IDENTITY) == {"id": run_id, "status": "running"}
    owned_by_a_process_that_ended(store, run_id)
    store = Store(tmp_path / "s.sqlite")  # opening marks the ownerless row
    assert store.find_run(IDENTITY) == {"id": run_id, "status": "interrupted"}
    again = store.begin_run(IDENTITY, "quick", {"torch": "x"})  # a resumed run keeps its row
    assert again == run_id
    assert store.load_part(run_id, "train d=5") == {"accuracy": [0.5, 1.0]}
    claims = [{"name": "c", "verdict": "holds"}]
    store.finish_run(run_id, "done", 2.0, result={"r": 1}, claims=claims,
                     figures={"f": "fig.png", "g": "g.png"}, captions={"f": "what f shows"})
    (run,) = store.runs()
    assert run["status"] == "done" and run["attempts"] == 2 and run["claims"] == claims
    assert run["figures"] == {"f": str(tmp_path / "fig.png"), "g": str(tmp_path / "g.png")}
    assert run["captions"] == {"f": "what f shows"} and run["result"] == {"r": 1}
    assert store.metric(run_id, "acc") == [(0, 0, 0.5)]


def test_a_failed_write_leaves_no_half_row(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    run_id = store.begin_run(IDENTITY, "quick", {})
    with pytest.raises(TypeError):  # the result cannot be serialised: the whole update rolls back
        store.finish_run(run_id, "done", 1.0, result={"bad": object()}, claims=[{"c": 1}])
    (run,) = store.runs()
    assert run["status"] == "running" and run["claims"] == [] and run["result"] is None


def test_reopening_keeps_everything(tmp_path):
    path = tmp_path / "s.sqlite"
    store = Store(path)
    run_id = store.begin_run(IDENTITY, "quick", {})
    store.finish_run(run_id, "diverged", 1.0, error="loss is not finite")
    store.close()
    (run,) = Store(path).runs()
    assert run["status"] == "diverged" and run["error"] == "loss is not finite"


def test_a_store_of_an_older_schema_gains_the_doctor_sessions_table_and_the_runs_about(tmp_path):
    path = tmp_path / "old.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:  # as schema 1 left it
        db.execute("DROP TABLE doctor_sessions")
        for column in ("about", "owner", "heartbeat"):
            db.execute(f"ALTER TABLE runs DROP COLUMN {column}")
        db.execute("ALTER TABLE figures DROP COLUMN caption")
        db.execute("PRAGMA user_version = 1")
    store = Store(path)
    assert store.runs() == []
    run_id = store.begin_run(RunIdentity("parity", 1, "{}", 0, 1, "cpu"), "quick", {},
                             {"title": "Parities"})
    assert store.run(run_id)["about"] == {"title": "Parities"}
    session = store.save_doctor_session("Net", {"verdicts": []}, [{"step": 0}], {"torch": "x"})
    assert store.doctor_sessions() == [{"id": session, "name": "Net", "document": {
        "verdicts": []}, "started_at": store.doctor_sessions()[0]["started_at"]}]
    assert store.doctor_sessions(with_history=True)[0]["history"] == [{"step": 0}]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.finish_run(run_id, "interrupted", 1.0)  # schema 4's status, in the rebuilt table
    assert store.run(run_id)["status"] == "interrupted"


def test_a_store_of_schema_4_gains_figure_captions_and_its_figures_read_uncaptioned(
        tmp_path, monkeypatch):
    path = tmp_path / "old.sqlite"
    store = Store(path)
    run_id = store.begin_run(IDENTITY, "quick", {})
    store.finish_run(run_id, "done", 1.0, figures={"f": "f.png"}, captions={"f": "dropped"})
    store.close()
    with sqlite3.connect(path) as db:  # as schema 4 left it
        db.execute("ALTER TABLE figures DROP COLUMN caption")
        db.execute("PRAGMA user_version = 4")
    with monkeypatch.context() as unwritable:  # read where it cannot migrate: no captions
        unwritable.setattr(os, "access", lambda path, mode: mode != os.W_OK)
        (run,) = Store(path, readonly=True).runs()
    assert run["figures"] == {"f": str(tmp_path / "f.png")} and run["captions"] == {}
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    (run,) = Store(path, readonly=True).runs()  # writable: migrated on opening, caption NULL
    assert run["captions"] == {}
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT caption FROM figures").fetchall() == [(None,)]


def test_a_store_of_a_newer_schema_is_refused_and_kept(tmp_path):
    path = tmp_path / "new.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer gradfail") as raised:
        Store(path)
    assert "\n" not in str(raised.value)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 99
