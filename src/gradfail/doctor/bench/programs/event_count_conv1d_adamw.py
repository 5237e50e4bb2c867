"""Counting Gaussian bumps ("events") in noisy 1-D signals with a small 1-D CNN.
Model: two Conv1d layers, mean pooling, a rate head binned to whole counts by torch.floor,
then a learnable scale/offset; AdamW with a OneCycleLR schedule, Huber loss.
Cause of failure: torch.floor is piecewise constant, its derivative is zero almost everywhere,
so the conv layers and the rate head below it get no gradient; only the calibration learns.
FIXED=1: floor with a straight-through estimator (floor forward, identity backward).
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(3)
np.random.seed(3)
FIXED = os.environ.get("FIXED", "0") == "1"
PROBE = os.environ.get("PROBE", "0") == "1"

# ---- synthetic data: Gaussian bumps on noise, target = number of bumps
L, N = 64, 3000
t = np.arange(L)
counts = np.random.randint(0, 9, size=N)
signals = 0.3 * np.random.randn(N, L)
for i in range(N):
    for c in np.random.randint(2, L - 2, size=counts[i]):
        signals[i] += np.exp(-0.5 * ((t - c) / 1.2) ** 2)
signals = (signals - signals.mean()) / signals.std()
X = torch.tensor(signals, dtype=torch.float32).unsqueeze(1)
y = torch.tensor(counts, dtype=torch.float32)
X_tr, y_tr, X_te, y_te = X[:2500], y[:2500], X[2500:], y[2500:]


class Counter(nn.Module):
    def __init__(self, ch=16):
        super().__init__()
        self.conv1 = nn.Conv1d(1, ch, 5, padding=2)
        self.conv2 = nn.Conv1d(ch, ch, 5, padding=2)
        self.rate = nn.Linear(ch, 1)
        self.scale = nn.Parameter(torch.ones(1))
        self.offset = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(h))
        r = F.softplus(self.rate(h.mean(-1)).squeeze(-1) * 4.0)
        k = r + (torch.floor(r) - r).detach() if FIXED else torch.floor(r)
        return self.scale * k + self.offset


model = Counter()
steps, bs = 1000, 64
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps)
loss_fn = nn.HuberLoss()

losses, conv_grad = [], []
for step in range(steps):
    idx = torch.randint(0, len(X_tr), (bs,))
    loss = loss_fn(model(X_tr[idx]), y_tr[idx])
    opt.zero_grad()
    loss.backward()
    if PROBE and step % 50 == 0:
        conv_grad.append(model.conv1.weight.grad.norm().item())
    opt.step()
    sched.step()
    losses.append(loss.item())

with torch.no_grad():
    pred = model(X_te)
r2 = 1.0 - ((pred - y_te) ** 2).mean().item() / y_te.var().item()
if PROBE:
    print("PROBE conv_grad_norm=%.3g" % np.mean(conv_grad))
print("FINAL loss=%.4f r2=%.3f" % (np.mean(losses[-steps // 20:]), r2))
