"""Shared fixtures: a quick parity run stored once per session, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gradfail import registry
from gradfail.experiment import RunContext
from gradfail.runner import run_experiment
from gradfail.store import Store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def quick_store(tmp_path_factory) -> Store:
    """A store holding every registered experiment run once at `quick` scale."""
    store = Store(tmp_path_factory.mktemp("quick") / "gradfail.sqlite")
    for experiment in registry.experiments().values():
        run_experiment(experiment, experiment.config("quick"), scale="quick", store=store,
                       n_seeds=experiment.seeds["quick"])
    return store


@pytest.fixture
def cpu_context() -> RunContext:
    return RunContext(torch.device("cpu"), seed=0, n_seeds=2)


def gradfail_cli(*args: str, cwd: Path | None = None, check: bool = False
                 ) -> subprocess.CompletedProcess:
    """Run the real `gradfail` command line in a subprocess."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "gradfail.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, check=check, timeout=600)
