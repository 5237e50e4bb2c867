"""`gradfail show` (one experiment, nothing run) and `gradfail export` (the store as tidy tables
that pandas reads in one line)."""

from __future__ import annotations

import json
import sqlite3
import sys

import pytest

from conftest import gradfail_cli
from gradfail import registry
from gradfail.cli import main
from gradfail.experiment import SCALES
from gradfail.export import COLUMNS
from gradfail.runner import run_experiment
from gradfail.store import Store

PARITY = registry.get("parity")
TINY = {"dims": [5], "steps": [300], "variance_dims": [4, 5], "floor_dims": [], "periodic_dim": 3,
        "periodic_radii": [0.5], "periodic_inputs": 256}
READ = {"csv": ("csv", lambda pd, path: pd.read_csv(path)),
        "json": ("jsonl", lambda pd, path: pd.read_json(path, lines=True)),
        "parquet": ("parquet", lambda pd, path: pd.read_parquet(path))}


# --------------------------------------------------------------------------------------------
# show


def test_show_lists_every_setting_at_every_scale_and_every_claim():
    done = gradfail_cli("show", "parity", "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert (shown["title"], shown["section"]) == (PARITY.title, PARITY.section)
    assert shown["description"] == PARITY.description
    assert shown["source"].endswith("parity.py") and shown["seeds"] == PARITY.seeds
    settings = {row["name"]: row for row in shown["settings"]}
    assert list(settings) == list(PARITY.config_class.model_fields)
    for scale in SCALES:
        resolved = PARITY.config(scale).model_dump(mode="json")
        assert {name: row["values"][scale] for name, row in settings.items()} == resolved
    for row in settings.values():
        assert row["differs_from_default"] == [s for s in SCALES
                                               if row["values"][s] != row["values"]["default"]]
    assert settings["dims"]["type"] == "list[int]"
    assert settings["subset_size"]["type"] == "int | None"
    assert settings["dims"]["description"] == "d of Figure 1's curves"
    assert settings["periodic_radii"]["description"] == ""  # a field without a description
    assert [(c["id"], c["name"], c["kind"], c["paper"], c["tolerance"], c["test"])
            for c in shown["claims"]] == [(c.id, c.name, c.kind, c.paper, c.tolerance, c.test)
                                          for c in PARITY.claims]
    assert shown["figures"] == [{"name": name, "caption": caption}
                                for name, caption in PARITY.captions.items()]


def test_show_on_the_terminal_names_settings_claims_and_figures():
    done = gradfail_cli("show", "parity")
    assert done.returncode == 0, done.stderr
    for text in ("periodic_inputs", "d=30 stays at chance", "d-30-stays-at-chance",
                 "sanity check", "parity.py", "gradient_variance"):
        assert text in done.stdout
    assert "one band per input dimension d" in " ".join(done.stdout.split())


def test_show_of_an_unknown_experiment_is_one_line():
    done = gradfail_cli("show", "parit")
    assert done.returncode == 2 and "did you mean 'parity'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# --------------------------------------------------------------------------------------------
# export


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "s.sqlite"
    run_experiment(PARITY, PARITY.config("quick", TINY), scale="quick", store=Store(path),
                   n_seeds=2)
    return path


def counted(path, table: str) -> int:
    """Rows of a table, straight from the SQLite file (not through gradfail)."""
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize("format", ["csv", "json", "parquet"])
def test_each_format_loads_in_one_line_with_every_row_of_the_store(format, store_path,
                                                                   tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    if format == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / "new" / "folder"
    assert main(["export", "--format", format, "--out", str(out), "--store",
                 str(store_path)]) == 0
    extension, read = READ[format]
    frames = {table: read(pd, out / f"{table}.{extension}") for table in COLUMNS}
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.{extension}" for t in COLUMNS)
    for table, frame in frames.items():
        assert list(frame.columns) == list(COLUMNS[table]), table
        assert len(frame) == counted(store_path, table) > 0, table

    (run,) = Store(store_path, readonly=True).runs()
    runs = frames["runs"]
    assert runs.loc[0, "id"] == run["id"] and runs.loc[0, "status"] == "done"
    assert json.loads(runs.loc[0, "config"]) == run["config"]
    assert runs.loc[0, "torch_version"] == run["provenance"]["torch"]
    claims = frames["claims"]
    assert list(claims["name"]) == [c["name"] for c in run["claims"]]
    assert list(claims["id"]) == [c["id"] for c in run["claims"]]
    assert list(claims["verdict"]) == [c["verdict"] for c in run["claims"]]
    assert list(claims["kind"]) == [c["kind"] for c in run["claims"]]
    measured = [c["measured"] for c in run["claims"]]
    assert [None if pd.isna(m) else m for m in claims["measured"]] == pytest.approx(measured)
    with_interval = [i for i, c in enumerate(run["claims"]) if c["interval"]]
    assert with_interval and all(claims.loc[i, "interval_method"] == run["claims"][i][
        "interval"]["method"] for i in with_interval)
    metrics = frames["metrics"]
    series = metrics[metrics["series"] == "accuracy/d=5"]
    stored = Store(store_path, readonly=True).metric(run["id"], "accuracy/d=5")
    exported = sorted(zip(series["step"], series["seed_index"], series["value"]))
    assert [row[:2] for row in exported] == [row[:2] for row in sorted(stored)]
    assert [row[2] for row in exported] == pytest.approx([row[2] for row in sorted(stored)])


def test_a_claim_stored_before_ids_is_exported_with_its_names_slug(tmp_path):
    from gradfail.export import tables
    from gradfail.store import RunIdentity

    store = Store(tmp_path / "old.sqlite")
    run_id = store.begin_run(RunIdentity("parity", 1, "{}", 0, 1, "cpu"), "quick", {})
    store.finish_run(run_id, "done", 1.0, result={}, claims=[
        {"name": "d=30 stays at chance", "verdict": "holds"},
        {"id": "d-5-is-learned", "name": "an older wording", "verdict": "fails"}])
    assert [(row["id"], row["name"]) for row in tables(store)["claims"]] == [
        ("d-30-stays-at-chance", "d=30 stays at chance"), ("d-5-is-learned", "an older wording")]


def test_a_second_export_into_the_same_folder_is_refused_and_changes_nothing(
        store_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "--out", str(out), "--store", str(store_path)]) == 0
    printed = capsys.readouterr().out
    assert all(str(out / f"{table}.csv") in printed for table in COLUMNS)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    (out / "runs.csv").write_text("mine")
    before["runs.csv"] = b"mine"
    done = gradfail_cli("export", "--out", str(out), "--store", str(store_path))
    assert done.returncode == 2 and "refusing to overwrite" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_one_existing_file_refuses_the_whole_export(store_path, tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text("kept")
    assert main(["export", "--format", "json", "--out", str(tmp_path), "--store",
                 str(store_path)]) == 2
    assert "metrics.jsonl" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_a_missing_store_is_one_line(tmp_path):
    done = gradfail_cli("export", "--out", str(tmp_path / "out"), "--store",
                        str(tmp_path / "none.sqlite"))
    assert done.returncode == 2 and "no store at" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "none.sqlite").exists()


def test_parquet_without_pyarrow_names_the_extra(store_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert main(["export", "--format", "parquet", "--out", str(tmp_path / "out"), "--store",
                 str(store_path)]) == 2
    error = capsys.readouterr().err
    assert "pip install 'gradfail[export]'" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_export_json_says_what_it_wrote(store_path, tmp_path, capsys):
    assert main(["export", "--format", "json", "--json", "--out", str(tmp_path), "--store",
                 str(store_path)]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["rows"] == {table: counted(store_path, table) for table in COLUMNS}
    assert written["files"] == {table: str(tmp_path / f"{table}.jsonl") for table in COLUMNS}
