"""Wall-clock timing shared by the experiments and benchmarks that measure time: one warm-up
call, then the median of repeated calls (the median, because a passing load on a shared machine
only ever slows a call down); and the machine's float32 matmul peak, the yardstick of achieved
GFLOP/s."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def median_seconds(compute: Callable[[], object], repeats: int) -> float:
    """The median wall time of `repeats` calls of `compute`, after one warm-up call."""
    compute()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        compute()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def synchronize(device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device, n: int = 1024, repeats: int = 20) -> float:
    """A plain square float32 matmul's GFLOP/s on this device, measured in this process."""
    import torch

    a, b = (torch.randn(n, n, device=device) for _ in range(2))
    a @ b
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9
