"""The doctor's benchmark: independent PyTorch training programs, never derived from the zoo or
the rules, each labelled with one failure (or healthy).

Each program (under `programs/`) is a plain training script, written from a one-paragraph
description of its failure by someone who had not read the doctor's rules, runnable as
`python program.py` in seconds on one CPU thread. Its label is justified twice: `PROBE=1`
prints the number that shows the mechanism, and `FIXED=1` applies only the remedy, after which
it trains. `manifest.json` holds every program's label, what it varies (architecture, data,
training code), its measured probe and final numbers broken and fixed, and its split: by
program, never by seed, into a development half (the rules were set on it) and a held-out half
(reported apart; its figures are those of the first evaluation after the rules were frozen).
A second, fresh set (split "fresh"), written the same way after that evaluation and committed
before it was ever run, is the held-out set of the rules as they were revised after it.
"""

from __future__ import annotations

import json
import os
import queue
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gradfail.doctor.bench.zygote import Zygote, ZygoteDied

HERE = Path(__file__).parent
PROGRAMS = HERE / "programs"
MANIFEST = HERE / "manifest.json"
SPLITS = ("dev", "heldout", "fresh", "all")


@dataclass(frozen=True)
class Program:
    name: str
    label: str
    split: str
    architecture: str
    data: str
    training: str
    cause: str

    @property
    def path(self) -> Path:
        return PROGRAMS / f"{self.name}.py"


def programs(split: str = "all") -> list[Program]:
    """The benchmark's programs of one split (dev, heldout or all), in manifest order."""
    if split not in SPLITS:
        from gradfail.doctor.monitor import DoctorError
        raise DoctorError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
    entries = json.loads(MANIFEST.read_text())["programs"]
    fields = Program.__dataclass_fields__
    return [Program(name=entry["program"], **{k: v for k, v in entry.items() if k in fields})
            for entry in entries if split == "all" or entry["split"] == split]


def one_thread() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1"}


def run_program(program: Program, zygote: Zygote, timeout: float = 300.0,
                budget: float | None = None) -> dict:
    """The program under `gradfail doctor --json` (forked by a one-thread zygote; under an
    overhead budget when one is given): the doctors' documents, the quantity histories they
    stored, the script's wall time under the doctor, or the error."""
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "bench.sqlite"
        status, out, err = zygote.run("doctor", [
            "--json", "--store", str(store), *(["--overhead", str(budget)] if budget else []),
            str(program.path)], Path(scratch), timeout)
        if status is None:
            return {"program": program.name, "error": f"timed out after {timeout:.0f} s"}
        if status != 0:
            last = (err.strip().splitlines() or ["(no output)"])[-1]
            return {"program": program.name, "error": last}
        found = json.loads(out)
        from gradfail.store import Store
        sessions = Store(store).doctor_sessions(with_history=True)
    return {"program": program.name, "doctors": found["doctors"], "wall_s": found["wall_s"],
            "histories": [s["history"] for s in sessions]}


def time_plain(program: Program, zygote: Zygote, timeout: float = 300.0) -> float:
    """The script's own wall time without the doctor, timed as the doctor times it: its body,
    with torch already imported (as `gradfail doctor` has it)."""
    with tempfile.TemporaryDirectory() as scratch:
        status, _, err = zygote.run("plain", [str(program.path)], Path(scratch), timeout)
    if status != 0:
        return float("nan")
    return float(err.strip().splitlines()[-1])


def evaluate(program: Program, zygote: Zygote, overhead: bool = True,
             budget: float | None = None) -> dict:
    """One program: the doctor's run, and, back to back before and after it, two plain runs
    for the overhead (the faster counts: a plain run slowed by a passing load would flatter
    the doctor)."""
    start = time.perf_counter()
    plain = time_plain(program, zygote) if overhead else None
    result = run_program(program, zygote, budget=budget)
    if overhead and "error" not in result:
        result["plain_s"] = min(plain, time_plain(program, zygote))
    result |= {"label": program.label, "split": program.split,
               "elapsed_s": time.perf_counter() - start}
    return result


def evaluate_all(chosen: list[Program], jobs: int = 1, progress=None,
                 overhead: bool = True, budget: float | None = None) -> list[dict]:
    """Every chosen program's outcome (gradfail.doctor.bench.scoring), `jobs` at a time (each
    slot a one-thread zygote that forks the runs), in order."""
    from concurrent.futures import ThreadPoolExecutor

    from gradfail.doctor.bench.scoring import outcome

    slots: queue.SimpleQueue[Zygote] = queue.SimpleQueue()

    def one(program: Program) -> dict:
        zygote = slots.get()
        try:
            result = outcome(evaluate(program, zygote, overhead, budget))
        except ZygoteDied as died:  # killed (out of memory, say): this program only
            zygote.close()
            zygote = Zygote(one_thread())
            result = outcome({"program": program.name, "error": str(died),
                              "label": program.label, "split": program.split})
        finally:
            slots.put(zygote)
        if progress:
            progress(1)
        return result

    workers = max(1, min(jobs, len(chosen)))
    for _ in range(workers):
        slots.put(Zygote(one_thread()))
    try:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, chosen))
    finally:
        while not slots.empty():
            slots.get().close()
