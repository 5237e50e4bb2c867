"""Nothing lost, nothing hidden: one test per defect a hostile or careless user found (issue
"Nothing lost, nothing hidden"): figures that belong to their store, runs with owners, killed
runs that hide nothing, strict stores, bounded inputs, clean output."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import gradfail_cli
from gradfail.errors import StoreError
from gradfail.store import RunIdentity, Store

TINY = ["--seeds", "1", "--set", "dims=5", "--set", "steps=300", "--set", "variance_dims=4,5",
        "--set", "floor_dims=[]", "--set", "periodic_dim=3", "--set", "periodic_radii=0.5",
        "--set", "periodic_inputs=256"]


def tiny_run(store: Path, *extra: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return gradfail_cli("run", "parity", "--scale", "quick", *TINY, *extra, "--store", str(store),
                        "--json", cwd=cwd)


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.png"))}


def one_line_error(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradfail: error:"), done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def without_file_permissions(*command: str) -> list[str]:
    """`command` with file permissions enforced even for root (CAP_DAC_OVERRIDE dropped)."""
    if os.geteuid() != 0:
        return list(command)
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file permissions cannot be enforced")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", *command]


def cli_without_permissions(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(without_file_permissions(sys.executable, "-m", "gradfail.cli", *args),
                          capture_output=True, text=True, timeout=300)


# --------------------------------------------------------------------------------------------
# 1. Figures belong to their store.


def test_two_stores_in_one_folder_keep_their_own_figures(tmp_path):
    assert tiny_run(tmp_path / "a.sqlite").returncode == 0
    before = digests(tmp_path / "a.figures")
    assert before
    assert tiny_run(tmp_path / "b.sqlite", "--set", "lr=0.02").returncode == 0
    assert digests(tmp_path / "a.figures") == before
    assert digests(tmp_path / "b.figures")


def test_a_relative_store_reports_its_figures_from_anywhere(tmp_path):
    (tmp_path / "here").mkdir()
    assert tiny_run(Path("rel.sqlite"), cwd=tmp_path / "here").returncode == 0
    with sqlite3.connect(tmp_path / "here" / "rel.sqlite") as db:
        paths = [p for (p,) in db.execute("SELECT path FROM figures")]
    assert paths and all(not Path(p).is_absolute() for p in paths)
    done = gradfail_cli("report", "--store", "here/rel.sqlite", "--out", "elsewhere",
                        cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "elsewhere" / "index.html").read_text()
    assert "figure file missing" not in html and "<img" in html


# --------------------------------------------------------------------------------------------
# 2, 3. Runs have owners; a killed run hides nothing.

IDENTITY = RunIdentity("parity", 1, '{"d":5}', seed=0, n_seeds=1, device="cpu")


def test_a_second_process_on_a_running_identity_is_refused_naming_the_owner(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    run_id = store.begin_run(IDENTITY, "quick", {})
    with pytest.raises(StoreError, match=rf"run {run_id} .* is being run by pid {os.getpid()}"):
        Store(tmp_path / "s.sqlite").begin_run(IDENTITY, "quick", {})
    assert store.run(run_id)["status"] == "running"  # the live run is not marked failed


def test_a_second_cli_run_on_a_live_run_is_refused_and_nothing_is_stored_twice(tmp_path):
    store = tmp_path / "s.sqlite"
    long = ["--set", "steps=40000"]  # long enough to be running when the second one starts
    first = subprocess.Popen([sys.executable, "-m", "gradfail.cli", "run", "parity", "--scale",
                              "quick", *TINY, *long, "--store", str(store)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: running_rows(store) == 1, first)
        one_line_error(tiny_run(store, *long), "is being run by pid", str(first.pid))
    finally:
        first.terminate()
        first.wait(timeout=60)
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
        rows = db.execute("SELECT series, step, seed_index, count(*) FROM metrics"
                          " GROUP BY series, step, seed_index, part HAVING count(*) > 1")
        assert rows.fetchall() == []


def running_rows(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=1) as db:
            return db.execute("SELECT count(*) FROM runs WHERE status='running'").fetchone()[0]
    except sqlite3.Error:
        return 0


def wait_for(condition, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_run_leaves_the_earlier_finished_run_shown(tmp_path, how):
    store = tmp_path / "s.sqlite"
    assert tiny_run(store).returncode == 0
    later = subprocess.Popen([sys.executable, "-m", "gradfail.cli", "run", "parity", "--scale",
                              "quick", *TINY, "--set", "steps=40000", "--store", str(store)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: running_rows(store) == 1, later)
    later.send_signal(how)
    later.wait(timeout=60)
    claims = json.loads(gradfail_cli("claims", "--store", str(store), "--json",
                                     check=True).stdout)
    [parity] = claims
    assert parity["run"] == 1 and parity["status"] == "done" and parity["claims"]
    assert parity["later_attempt"] == {"id": 2, "status": "interrupted"}
    runs = json.loads(gradfail_cli("runs", "--store", str(store), "--json", check=True).stdout)
    assert [r["status"] for r in runs] == ["done", "interrupted"]


# --------------------------------------------------------------------------------------------
# 4. Strict stores.


@pytest.fixture
def stored(tmp_path) -> Path:
    """A store with one finished run, in a folder of its own."""
    folder = tmp_path / "results"
    folder.mkdir()
    assert tiny_run(folder / "s.sqlite").returncode == 0
    return folder / "s.sqlite"


def test_a_read_only_store_is_read_and_never_written(stored):
    stored.chmod(0o444)
    listed = cli_without_permissions("runs", "--store", str(stored), "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1
    one_line_error(cli_without_permissions("run", "parity", "--scale", "quick", *TINY,
                                           "--set", "lr=0.02", "--store", str(stored)),
                   "read-only")


def test_a_store_in_a_read_only_folder_is_read(stored):
    before = stored.read_bytes()
    stored.parent.chmod(0o555)
    try:
        for command in (("runs", "--json"), ("claims", "--json")):
            done = cli_without_permissions(*command, "--store", str(stored))
            assert done.returncode == 0, done.stderr
    finally:
        stored.parent.chmod(0o755)
    assert stored.read_bytes() == before


def test_a_corrupt_store_is_refused_untouched(stored):
    with sqlite3.connect(stored) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    data = bytearray(stored.read_bytes())
    for page in range(2, pages):  # keep the header page; scribble over every data page
        data[page * page_size + 8: page * page_size + 64] = b"\xff" * 56
    stored.write_bytes(bytes(data))
    one_line_error(tiny_run(stored, "--set", "lr=0.02"), "corrupt")
    assert stored.read_bytes() == bytes(data)


def test_an_empty_sqlite_file_of_another_program_is_refused_untouched(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA application_id = 1234")
    before = path.read_bytes()
    one_line_error(tiny_run(path), "another program")
    assert path.read_bytes() == before


def test_read_commands_on_a_missing_store_create_nothing(tmp_path):
    for command in ("runs", "claims", "report"):
        one_line_error(gradfail_cli(command, "--store", str(tmp_path / "typo.sqlite")),
                       "no store at")
    assert list(tmp_path.iterdir()) == []


def test_a_lock_held_too_long_is_one_line(tmp_path, monkeypatch):
    store = Store(tmp_path / "s.sqlite")
    holder = sqlite3.connect(tmp_path / "s.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(Store, "_connect", staticmethod(
        lambda uri: sqlite3.connect(uri, uri=True, isolation_level=None, timeout=0.1)))
    with pytest.raises(StoreError, match="locked by another process"):
        Store(tmp_path / "s.sqlite")
    holder.execute("ROLLBACK")
    store.close()


# --------------------------------------------------------------------------------------------
# 5, 6. Bounded inputs and clean output.


@pytest.mark.parametrize("setting, words", [
    ("steps=1000000000000", ("absurd size", "steps")),
    ("lr=Infinity", ("finite", "lr")),
    ("lr=NaN", ("finite", "lr")),
])
def test_absurd_or_non_finite_settings_are_refused_before_anything_is_stored(
        tmp_path, setting, words):
    one_line_error(tiny_run(tmp_path / "s.sqlite", "--set", setting), *words)
    assert not (tmp_path / "s.sqlite").exists()


def test_absurd_seed_counts_are_refused(tmp_path):
    done = gradfail_cli("run", "parity", "--scale", "quick", "--seeds", "100000000",
                        "--store", str(tmp_path / "s.sqlite"))
    one_line_error(done, "absurd size", "--seeds")


def test_stored_text_is_shown_as_it_is_and_json_is_strict(tmp_path):
    folder = tmp_path / "[b]odd[" / "[/b]"
    folder.mkdir(parents=True)
    store = folder / "s.sqlite"
    assert tiny_run(store).returncode == 0
    with sqlite3.connect(store) as db:  # a stored claim whose text looks like markup
        record = json.loads(db.execute("SELECT record FROM claims LIMIT 1").fetchone()[0])
        record |= {"detail": "cond E[ffᵀ] grows [/b]", "measured": None}
        db.execute("UPDATE claims SET record=? WHERE position=0", (json.dumps(record),))
        db.execute("UPDATE runs SET wall_s=?", (float("nan"),))
    listed = gradfail_cli("runs", "--store", str(store))
    assert listed.returncode == 0, listed.stderr
    claims = gradfail_cli("claims", "--store", str(store))
    assert claims.returncode == 0 and "E[ffᵀ]" in claims.stdout.replace("\n", "")
    document = gradfail_cli("runs", "--store", str(store), "--json").stdout
    assert json.loads(document, parse_constant=lambda name: pytest.fail(name))[0]["wall_s"] is None


def test_the_recorded_command_is_shell_quoted(tmp_path):
    store = tmp_path / "s.sqlite"
    assert tiny_run(store, "--set", "lr=0.02").returncode == 0
    [run] = json.loads(gradfail_cli("runs", "--store", str(store), "--json").stdout)
    command = run["provenance"]["command"]
    assert "'floor_dims=[]'" in command


@pytest.mark.parametrize("kind", ["file", "read-only folder"])
def test_a_report_that_cannot_be_written_is_one_line(stored, tmp_path, kind):
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("not a folder")
        one_line_error(gradfail_cli("report", "--store", str(stored), "--out", str(out)),
                       "cannot write the report")
    else:
        out.mkdir(mode=0o555)
        one_line_error(cli_without_permissions("report", "--store", str(stored), "--out",
                                               str(out)), "cannot write the report")


def test_out_of_memory_in_a_run_is_stored_failed_in_one_line(tmp_path, capsys):
    import torch
    from dataclasses import replace

    from gradfail import registry
    from gradfail.runner import run_experiment

    parity = registry.get("parity")

    def too_big(config, ctx):
        torch.empty(2**62, dtype=torch.uint8)  # the allocator refuses: a RuntimeError

    outcome = run_experiment(replace(parity, name="too_big", run=too_big), parity.config("quick"),
                             scale="quick", store=Store(tmp_path / "s.sqlite"))
    assert outcome.status == "failed" and outcome.error.startswith("out of memory:")
    assert "\n" not in outcome.error and "Traceback" not in capsys.readouterr().err


def test_the_doctor_calls_a_nan_loss_divergence_of_the_loss(tmp_path):
    script = tmp_path / "nan_loss.py"
    script.write_text(
        "import torch\nfrom torch import nn\ntorch.manual_seed(0)\n"
        "model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "x, y = torch.randn(256, 10), torch.randn(256, 1)\n"
        "for step in range(60):\n"
        "    loss = ((model(x) - y) ** 2).mean() * torch.tensor(float('nan'))\n"
        "    optimizer.zero_grad(); loss.backward(); optimizer.step()\n")
    done = gradfail_cli("doctor", "--json", "--store", str(tmp_path / "s.sqlite"), str(script))
    assert done.returncode == 0, done.stderr
    [doctor] = json.loads(done.stdout)["doctors"]
    [verdict] = doctor["verdicts"]
    assert verdict["name"] == "diverged" and verdict["evidence"].startswith("the loss")
