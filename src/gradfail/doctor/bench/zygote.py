"""Benchmark runs forked from a process that has already imported torch and the doctor.

Every benchmark program runs three times (plain, under `gradfail doctor --json`, plain again),
each timed over the script's body alone. As fresh `python` processes, each run also paid its
start-up and teardown, 1.5 s plain and 2.9 s under the doctor beside 2-3 s of training: two
fifths of the benchmark's time. A zygote (the pattern of Android's app launcher and of
multiprocessing's forkserver) imports torch and the doctor once, on one thread, and forks a
child for each run, which starts with everything imported and exits when the run ends. A child
is one run as the fresh process was: its own working directory, standard streams to files, its
exit status; the zygote itself never runs torch, so its children inherit no thread pool.

    server: serve()  (one JSON request a line on stdin; answers a line each: pid, status)
    client: Zygote().run("doctor" | "plain", args, cwd, timeout) -> (exit status, out, err)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path


# --------------------------------------------------------------------------------------------
# The server: import once, then fork a child per request.


def doctor(args: list[str]) -> int:
    """`gradfail doctor ARGS`, as the command line runs it."""
    from gradfail.cli import main

    return main(["doctor", *args])


def plain(args: list[str]) -> int:
    """The script `args[0]` run as __main__ without the doctor; its body's wall time on stderr
    (timed as the doctor times a script: torch already imported)."""
    import runpy
    import time

    sys.argv = list(args)
    start = time.perf_counter()
    try:
        runpy.run_path(args[0], run_name="__main__")
    except SystemExit as done:
        if done.code not in (None, 0):
            return done.code if isinstance(done.code, int) else 1
    print(time.perf_counter() - start, file=sys.stderr)
    return 0


CALLS = {"doctor": doctor, "plain": plain}


def child(request: dict) -> int:
    """One run in the forked child: its directory and streams, then the call's exit status."""
    os.chdir(request["cwd"])
    for fd, path, mode in ((0, os.devnull, os.O_RDONLY),
                           (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                           (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        os.dup2(os.open(path, mode, 0o644), fd)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        return CALLS[request["call"]](request["args"])
    except BaseException:  # noqa: BLE001 - a child reports every failure as its exit status
        import traceback

        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def serve() -> None:
    """Read requests, fork a child for each, answer its pid and then its exit status."""
    import torch  # noqa: F401 - what every child needs, imported once here

    import gradfail.doctor.commands  # noqa: F401
    import gradfail.doctor.script  # noqa: F401
    from gradfail import cli  # noqa: F401

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child never returns to this loop, whatever its call does
            status = 1
            try:
                status = child(request)
            finally:
                os._exit(status if isinstance(status, int) else 1)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), flush=True)


# --------------------------------------------------------------------------------------------
# The client: one zygote per job slot.


class ZygoteDied(RuntimeError):
    pass


class Zygote:
    """A zygote process (started with `env`) and the runs it forks, one at a time."""

    def __init__(self, env: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", f"from {__name__} import serve; serve()"], env=env,
            text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def _died(self) -> ZygoteDied:
        return ZygoteDied(f"the zygote ended with status {self._process.wait()}")

    def _answer(self) -> dict:
        line = self._process.stdout.readline()
        if not line:
            raise self._died()
        return json.loads(line)

    def run(self, call: str, args: list[str], cwd: Path, timeout: float
            ) -> tuple[int | None, str, str]:
        """(exit status, or None when killed at `timeout` seconds; stdout; stderr) of a run."""
        out, err = Path(cwd) / ".zygote.out", Path(cwd) / ".zygote.err"
        try:
            self._process.stdin.write(json.dumps({"call": call, "args": args, "cwd": str(cwd),
                                                  "stdout": str(out), "stderr": str(err)}) + "\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            raise self._died() from None
        pid, late = self._answer()["pid"], threading.Event()

        def kill() -> None:
            late.set()
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            status = self._answer()["status"]
        finally:
            timer.cancel()
        return (None if late.is_set() else status), out.read_text(), err.read_text()

    def close(self) -> None:
        try:
            self._process.stdin.close()
        except BrokenPipeError:
            pass  # it had ended
        self._process.wait()

