"""Joining or starting a Ray cluster, and leaving nothing behind.

A local cluster started here is shut down when gradfail ends (normally, by Ctrl-C or SIGTERM).
A driver killed with SIGKILL cannot do that; the processes of the cluster it started are
recorded in a file named after it, and the next start stops those whose driver is gone. An
address that is open but not Ray's is refused in one line before Ray's own retries begin.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import tempfile
from pathlib import Path

from gradfail import owners
from gradfail.errors import ConfigError

LEFTOVERS = Path(tempfile.gettempdir()) / "gradfail-ray"
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def ray_module():
    """`import ray`, or a one-line error naming the extra."""
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray backend needs Ray: pip install 'gradfail[ray]'") from None
    return ray


def start(address: str | None = None, num_cpus: int = 2) -> None:
    """Join the cluster at `address`, or start a local one (no dashboard, no usage stats,
    workers' output kept off the driver's stdout) that is shut down when gradfail ends."""
    ray = ray_module()
    if ray.is_initialized():
        return
    if address not in (None, "auto"):
        check_reachable(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False}
    try:
        if address is None:
            stop_leftovers()
            ray.init(num_cpus=num_cpus, object_store_memory=256 * 2**20, **options)
            record_cluster(ray)
            atexit.register(shutdown, ray)
        else:
            ray.init(address=address, **options)
    except Exception as error:  # Ray raises ConnectionError, RuntimeError or ValueError here
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {first}") from None


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A TCP connect to host:port first (Ray itself waits minutes on an unreachable head), then
    the HTTP/2 greeting of Ray's gRPC control service: whatever else listens there is refused."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"a Ray address is host:port (or ray://host:port); got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as connection:
            connection.sendall(HTTP2_PREFACE)
            reply = connection.recv(9)
    except OSError as error:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: "
                          f"{error.strerror or error}") from None
    if len(reply) < 4 or reply[3] != 4:  # a gRPC server answers with a SETTINGS frame (type 4)
        raise ConfigError(f"{address!r} is open but does not answer as a Ray cluster "
                          "(no gRPC); check the host and port of the Ray head")


# --------------------------------------------------------------------------------------------
# What a killed driver leaves behind.


def record_cluster(ray) -> None:
    """The pids of the local cluster's processes, under the driver's name."""
    node = getattr(getattr(ray, "_private").worker, "_global_node", None)
    pids = [info.process.pid for infos in getattr(node, "all_processes", {}).values()
            for info in infos if getattr(info, "process", None) is not None]
    LEFTOVERS.mkdir(exist_ok=True)
    (LEFTOVERS / f"{os.getpid()}.json").write_text(json.dumps(
        {"driver": owners.this_process(), "pids": pids}))


def stop_leftovers() -> None:
    """Stop the processes of local clusters whose driver is gone (killed without shutdown)."""
    for record in LEFTOVERS.glob("*.json"):
        try:
            found = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if owners.is_alive(found.get("driver"), None):
            continue
        for pid in found.get("pids", []):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        record.unlink(missing_ok=True)


def shutdown(ray) -> None:
    if ray.is_initialized():
        ray.shutdown()
    (LEFTOVERS / f"{os.getpid()}.json").unlink(missing_ok=True)
