"""Runs side by side on one machine (`gradfail reproduce --jobs N`): worker processes with one
torch thread each, the parent alone writing the store.

Many experiments here are bound by per-operation overhead, not arithmetic, so two runs on one
thread each beat one run on two threads; two torch processes that each spin two OpenMP threads
on two cores are 10-100x slower, so every worker is pinned to one thread. An experiment that
starts processes of its own (`Experiment.cores`) takes as many slots as it uses.

The parent begins each run in the store, sends its `Assignment` to an idle worker, stores each
part the moment the worker reports it (a killed reproduce resumes from them), and finishes the
run when its `Performed` comes back. A worker's messages arrive in the order it sent them, so
a run's parts are stored before its end. A worker that dies (killed, out of memory) fails only
its own run, which resumes from its stored parts next time; a fresh worker takes its place.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import time
from collections import deque
from collections.abc import Callable

from gradfail.perform import Assignment, Job, Performed, dispatch_order, perform_by_name

PROGRESS_EVERY_S = 0.25  # a worker reports a bar's advance at most this often


class RelayedProgress:
    """A worker's progress bars, sent to the parent as messages (advances batched in time)."""

    def __init__(self, outbox, run_id: int) -> None:
        self._outbox, self._run_id, self._bars = outbox, run_id, 0

    def task(self, description: str, total: int) -> Callable[[int], None]:
        self._bars += 1
        bar, pending, last = self._bars, [0], [time.monotonic()]
        self._outbox.put(("task", self._run_id, bar, description, total))

        done = [0]

        def advance(n: int = 1) -> None:
            pending[0] += n
            done[0] += n
            if time.monotonic() - last[0] >= PROGRESS_EVERY_S or done[0] >= total:
                self._outbox.put(("advance", self._run_id, bar, pending[0]))
                pending[0], last[0] = 0, time.monotonic()

        return advance

    def done(self, description: str) -> None:
        self._outbox.put(("done", self._run_id, description))

    def running(self, description: str) -> Callable[[], None]:
        self._bars += 1
        bar = self._bars
        self._outbox.put(("running", self._run_id, bar, description))
        return lambda: self._outbox.put(("ended", self._run_id, bar))


def serve(inbox, outbox) -> None:
    """A worker's life: one torch thread; perform each assignment sent until told to stop
    (None). Ctrl-C reaches the parent, which ends the workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(1)
    while (assignment := inbox.get()) is not None:
        run_id = assignment.run_id

        def relay(key, result, metrics, wall_s, run_id=run_id):
            outbox.put(("part", run_id, key, result, metrics, wall_s))

        performed = perform_by_name(assignment, relay, RelayedProgress(outbox, run_id))
        outbox.put(("finished", run_id, performed))


class Worker:
    """The parent's handle on one worker process and the assignment it is performing."""

    def __init__(self, context, outbox) -> None:
        self.inbox = context.Queue()
        self.process = context.Process(target=serve, args=(self.inbox, outbox))
        self.process.start()
        self.assignment: Assignment | None = None
        self.cores = self.index = 0

    def stop(self) -> None:
        if self.process.is_alive():
            self.inbox.put(None)
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def run_side_by_side(jobs: list[Job], slots: int, store, bars) -> dict[int, object]:
    """Every job performed by worker processes using at most `slots` cores at once (a job
    wanting more than `slots` runs alone), in `dispatch_order`; each job's outcome by
    index. `store` receives every write (parts as reported, each run closed by
    `gradfail.runner.finish`); `bars`: progress."""
    from gradfail.runner import finish, interrupt, store_part

    context = multiprocessing.get_context("spawn")
    outbox = context.Queue()
    waiting = deque(sorted(jobs, key=dispatch_order))
    outcomes = {}
    workers = [Worker(context, outbox) for _ in range(min(slots, len(jobs)))]
    by_run: dict[int, Worker] = {}
    shown: dict[tuple[int, int], Callable] = {}  # bars and running phases, by (run, number)
    try:
        while waiting or by_run:
            in_use = sum(w.cores for w in workers if w.assignment is not None)
            for worker in workers:
                if not waiting or worker.assignment is not None:
                    continue
                cores = min(waiting[0].cores, slots)
                if in_use + cores > slots:
                    break
                job = waiting.popleft()
                begun = job.begin()
                if not isinstance(begun, Assignment):  # stored already: nothing to perform
                    outcomes[job.index] = begun
                    continue
                worker.assignment, worker.cores, worker.index = begun, cores, job.index
                by_run[begun.run_id] = worker
                in_use += cores
                worker.inbox.put(begun)
                shown[begun.run_id, 0] = bars.task(
                    f"{begun.experiment} run {begun.run_id} (seed {begun.seed}, {begun.scale})", 1)
            try:
                message = outbox.get(timeout=0.5)
            except queue.Empty:
                for worker in list(workers):
                    if worker.assignment is not None and not worker.process.is_alive():
                        lost = worker.assignment
                        performed = Performed("failed", 0.0, f"its worker process died (exit "
                                              f"{worker.process.exitcode}: killed, or out of "
                                              "memory); run again to resume from its stored "
                                              "parts")
                        outcomes[worker.index] = finish(store, lost, performed)
                        del by_run[lost.run_id]
                        workers[workers.index(worker)] = Worker(context, outbox)
                continue
            kind, run_id, *rest = message
            worker = by_run.get(run_id)
            if kind == "part":
                store_part(store, run_id)(*rest)
            elif kind == "task":
                bar, description, total = rest
                shown[run_id, bar] = bars.task(description, total)
            elif kind == "advance":
                bar, n = rest
                shown[run_id, bar](n)
            elif kind == "done":
                bars.done(rest[0])
            elif kind == "running":
                bar, description = rest
                shown[run_id, bar] = bars.running(description)
            elif kind == "ended":
                shown.pop((run_id, rest[0]))()
            elif kind == "finished" and worker is not None:
                outcomes[worker.index] = finish(store, worker.assignment, rest[0])
                shown[run_id, 0](1)
                del by_run[run_id]
                worker.assignment, worker.cores = None, 0
    except BaseException:
        for worker in workers:
            if worker.assignment is not None:
                worker.process.kill()
                interrupt(store, worker.assignment.run_id)
        raise
    finally:
        for worker in workers:
            worker.stop()
    return outcomes
