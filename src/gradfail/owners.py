"""Who is running a stored run: the owning process of a `running` row, and whether it lives.

A process is named by its host, its pid and its start time (so a reused pid is not mistaken
for the owner). On the owner's own host, liveness is exact (the process table); on another
host, the owner is taken as alive while its heartbeat is fresher than `STALE_AFTER_S`.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path

STALE_AFTER_S = 600.0


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (Linux), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def this_process() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_ticks(os.getpid())}


def is_alive(owner: dict | None, heartbeat: str | None) -> bool:
    """Whether the process that owns a row still runs (an unknown owner is taken as gone)."""
    if not owner:
        return False
    if owner.get("host") != socket.gethostname():
        if heartbeat is None:
            return False
        age = datetime.now(UTC) - datetime.fromisoformat(heartbeat)
        return age.total_seconds() < STALE_AFTER_S
    pid = owner.get("pid")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's live process
    except (OSError, TypeError):
        return False
    start = _start_ticks(pid)
    return start is None or owner.get("start") is None or start == owner["start"]


def describe(owner: dict) -> str:
    return f"pid {owner.get('pid')} on {owner.get('host')}"
