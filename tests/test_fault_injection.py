"""Kill -9 at twenty random points across `run`, `reproduce` and `report`: after every kill the
store is whole (integrity_check), nothing is duplicated, no figure is lost or truncated, and
the finished store's claims equal a clean run's (issue "Nothing lost, nothing hidden")."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import gradfail_cli

# three experiments with no wall-clock claim, whose quick runs are short
EXPERIMENTS = ("deep_linear", "saddles", "perceptron_lp")
KILLS = 20
PNG_END = b"IEND\xaeB`\x82"


def commands(store: Path, out: Path) -> list[list[str]]:
    where = ["--scale", "quick", "--store", str(store)]
    return [["reproduce", *EXPERIMENTS, *where],
            *(["run", name, *where] for name in EXPERIMENTS),
            ["report", "--store", str(store), "--out", str(out)]]


def claims_of(store: Path) -> dict:
    shown = json.loads(gradfail_cli("claims", "--store", str(store), "--json",
                                    check=True).stdout)
    return {run["experiment"]: [(c["name"], c["verdict"], c["measured"]) for c in run["claims"]]
            for run in shown}


def assert_whole(store: Path, out: Path) -> None:
    if not store.exists():
        return
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        duplicated = db.execute(
            "SELECT run_id, part, series, step, seed_index FROM metrics GROUP BY run_id, part,"
            " series, step, seed_index HAVING count(*) > 1").fetchall()
        assert duplicated == []
        paths = [p for (p,) in db.execute(
            "SELECT f.path FROM figures f JOIN runs r ON r.id = f.run_id"
            " WHERE r.status = 'done'")]
    for path in paths:
        figure = store.parent / path
        assert figure.read_bytes().endswith(PNG_END), figure
    for figure in out.glob("figures/*.png"):
        assert figure.read_bytes().endswith(PNG_END), figure
    if (out / "index.html").exists():
        assert (out / "index.html").read_text().rstrip().endswith("</html>")


@pytest.mark.slow
def test_killed_at_twenty_random_points_the_store_stays_whole_and_ends_as_a_clean_run(
        tmp_path):
    clean = tmp_path / "clean.sqlite"
    done = gradfail_cli("reproduce", *EXPERIMENTS, "--scale", "quick", "--store", str(clean))
    assert done.returncode == 0, done.stderr
    store, out = tmp_path / "faulty.sqlite", tmp_path / "report"
    points = random.Random(22)
    for _ in range(KILLS):
        command = points.choice(commands(store, out))
        process = subprocess.Popen([sys.executable, "-m", "gradfail.cli", *command],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(points.uniform(0.5, 6.0))
        process.kill()
        process.wait()
        assert_whole(store, out)
    finished = gradfail_cli(*commands(store, out)[0])
    assert finished.returncode == 0, finished.stderr
    assert_whole(store, out)
    assert claims_of(store) == claims_of(clean)
