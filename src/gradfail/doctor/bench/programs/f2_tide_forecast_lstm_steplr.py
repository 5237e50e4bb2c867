"""Tide-gauge style forecasting: predict the next reading of a two-harmonic signal.

Model: single-layer LSTM (hidden 32) over a 24-step window, linear read-out of the last state.
Optimizer: Adam (lr 1e-2) with a StepLR schedule (x0.3 every 250 steps), mini-batches of 64,
gradient-norm clipping at 1.0, MSE loss.
Healthy: inputs are on unit scale, the LSTM is gated, the schedule anneals the step.
FIXED=1 changes nothing.
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)
np.random.seed(0)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

WIN = 24


def make_series(n):
    t = np.arange(WIN + 1, dtype=np.float32)[None, :]
    a1 = np.random.uniform(0.5, 1.2, (n, 1))
    a2 = np.random.uniform(0.1, 0.5, (n, 1))
    w1 = np.random.uniform(0.20, 0.35, (n, 1))
    w2 = np.random.uniform(0.6, 0.9, (n, 1))
    ph = np.random.uniform(0, 2 * math.pi, (n, 2))
    s = a1 * np.sin(w1 * t + ph[:, :1]) + a2 * np.sin(w2 * t + ph[:, 1:])
    s = s + 0.03 * np.random.randn(*s.shape)
    s = s.astype(np.float32)
    return torch.from_numpy(s[:, :WIN, None]), torch.from_numpy(s[:, WIN:])


Xtr, ytr = make_series(4000)
Xte, yte = make_series(1000)


class Forecaster(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


model = Forecaster()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=250, gamma=0.3)
loss_fn = nn.MSELoss()

STEPS = 900
BS = 64
losses = []
for step in range(STEPS):
    idx = torch.randint(0, Xtr.shape[0], (BS,))
    pred = model(Xtr[idx])
    loss = loss_fn(pred, ytr[idx])
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    losses.append(loss.item())
    if step % 300 == 0:
        print(f"step {step} loss {loss.item():.4f} lr {sched.get_last_lr()[0]:.2e}")

model.eval()
with torch.no_grad():
    p = model(Xte)
    r2 = 1 - ((p - yte) ** 2).mean().item() / yte.var().item()

if PROBE:
    # healthy: error relative to a naive "repeat last value" forecast
    with torch.no_grad():
        naive = ((Xte[:, -1] - yte) ** 2).mean().item()
        mse = ((p - yte) ** 2).mean().item()
    print(f"PROBE mse_vs_naive_forecast={mse / naive:.3f}")

tail = max(1, STEPS // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} r2={r2:.3f}")
