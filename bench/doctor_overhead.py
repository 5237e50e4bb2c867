"""Overhead of the doctor per training step, measured side by side in one process.

An MLP (784-256-10) and a small CNN (two 3×3 convolutions on 28×28), batch 128, SGD, CPU: the
bare step, the step with the doctor's cheap set every step (per-layer norms and update ratios,
SNR and noise scale from hooked per-sample norms, activation flatness), and with curvature
(10 Lanczos + 4 Hutchinson products on 32 samples) added every 50th step. Alternating blocks
of steps, median time per step. (Cockpit's economy preset on the same models is not run here
yet: it needs its own environment; see the issue note.)
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from gradfail.doctor import Doctor

MODELS = {
    "MLP 784-256-10": lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                                            nn.Linear(256, 10)),
    "CNN 2×conv3×3": lambda: nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                                           nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                                           nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                           nn.Linear(32 * 7 * 7, 10)),
}
STEPS = 100  # per measured block: two curvature events at every 50th step


def seconds_per_step(model: nn.Module, mode: str, data: list) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.functional.cross_entropy
    doctor = None if mode == "bare" else Doctor(
        model, optimizer, loss_fn, curvature_every=50 if mode == "with curvature" else 10**9)
    start = time.perf_counter()
    for x, y in data:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if doctor:
            doctor.step(loss, x, y)
    elapsed = (time.perf_counter() - start) / len(data)
    if doctor:
        doctor.close()
    return elapsed


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 128")
    for name, build in MODELS.items():
        model = build()
        data = [(torch.randn(128, 1, 28, 28), torch.randint(10, (128,))) for _ in range(STEPS)]
        times = {mode: [] for mode in ("bare", "cheap set", "with curvature")}
        seconds_per_step(model, "cheap set", data[:5])  # warm-up
        for _ in range(3):
            for mode in times:
                times[mode].append(seconds_per_step(model, mode, data))
        bare = np.median(times["bare"])
        print(f"{name}: bare {bare * 1e3:.2f} ms/step; " + "; ".join(
            f"{mode} × {np.median(t) / bare:.2f}" for mode, t in times.items() if mode != "bare"))


if __name__ == "__main__":
    main()
