"""The command line: claims as JSON, the stored runs, and one-line errors with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import gradfail_cli


def test_list_names_every_experiment_with_its_claims():
    listed = json.loads(gradfail_cli("list", "--json", check=True).stdout)
    parity = next(e for e in listed if e["name"] == "parity")
    assert parity["section"] == "§2" and "d=30 stays at chance" in parity["claims"]


def test_a_run_is_stored_once_with_its_claims_and_provenance(tmp_path):
    store = tmp_path / "s.sqlite"
    done = gradfail_cli("run", "parity", "--scale", "quick", "--json", "--store", str(store))
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["status"] == "done" and not run["cached"]
    verdicts = {claim["id"]: claim["verdict"] for claim in run["claims"]}
    assert verdicts["variance-within-theorem-1s-bound"] == "holds"  # a sanity check
    for claim in run["claims"]:
        assert set(claim) >= {"id", "name", "paper", "measured", "holds", "verdict", "kind",
                              "test", "interval"}

    again = json.loads(gradfail_cli("run", "parity", "--scale", "quick", "--json", "--store",
                                    str(store), check=True).stdout)["runs"][0]
    assert again["cached"] and again["id"] == run["id"] and again["claims"] == run["claims"]

    stored = json.loads(gradfail_cli("runs", "--json", "--store", str(store), check=True).stdout)
    assert len(stored) == 1
    assert stored[0]["provenance"]["torch"] == torch.__version__
    assert stored[0]["config"]["steps"] == [4000] and stored[0]["seed"] == 0
    assert stored[0]["figures"] and all(Path(p).exists() for p in stored[0]["figures"].values())


@pytest.mark.parametrize("args, message", [
    (["run", "parit"], "did you mean 'parity'"),
    (["run", "parity", "--set", "dim=5"], "unknown setting 'dim'"),
    (["run", "parity", "--set", "dims=-5"], "greater than or equal to 2"),
    (["run", "parity", "--set", "batch_size=0"], "batch_size"),
    (["run", "parity", "--set", "lr=fast"], "valid number"),
    (["run", "parity", "--set", "novalue"], "key=value"),
    (["run", "parity", "--seeds", "-1"], "positive integer"),
    (["run", "parity", "--scale", "huge"], "invalid choice"),
    (["run", "parity", "--store", "/proc/none/s.sqlite"], "cannot write the store"),
    (["run", "parity", "--device", "tpu"], "unknown device"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    done = gradfail_cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line(tmp_path):
    done = gradfail_cli("run", "parity", "--device", "cuda", cwd=tmp_path)
    assert done.returncode == 2 and "CUDA is not available" in done.stderr


def test_a_corrupt_store_is_refused_and_left_as_it_was(tmp_path):
    store = tmp_path / "gradfail.sqlite"
    store.write_text("not a database")
    done = gradfail_cli("run", "parity", "--scale", "quick", "--store", str(store))
    assert done.returncode == 2 and "not a gradfail store" in done.stderr
    assert store.read_text() == "not a database"


def test_every_argument_of_every_command_explains_itself():
    import argparse

    from gradfail.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    silent = [f"{name} {action.dest}" for name, sub in commands.items()
              for action in sub._actions
              if not action.help and not isinstance(action, argparse._HelpAction)]
    assert silent == []
    assert "default: results/gradfail.sqlite" in " ".join(commands["runs"].format_help().split())


def test_a_reader_that_stops_early_gets_no_traceback():
    import subprocess
    import sys

    piped = subprocess.run(f"{sys.executable} -m gradfail.cli list --json | head -c 10",
                           shell=True, capture_output=True, text=True)
    assert piped.stdout == '[\n  {\n    ' and "Traceback" not in piped.stderr
