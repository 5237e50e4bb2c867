"""Friedman #1 regression (10 standardised features) with a 3-hidden-layer hardtanh MLP.

Custom nn.Module with functional F.hardtanh, SGD with momentum 0.9, cosine LR schedule,
mini-batches of 64. Weights are initialised with a unit normal (std=1.0) regardless of fan-in,
so pre-activations have std ~3-8 and most hardtanh units sit on their flat +-1 plateaus,
where the derivative is exactly zero: the hidden layers barely learn and the net fits little.
FIXED=1 uses Xavier (Glorot) initialisation instead.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_friedman1

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

X, y = make_friedman1(n_samples=3000, n_features=10, noise=0.5, random_state=0)
X = (X - X.mean(0)) / X.std(0)
y = (y - y.mean()) / y.std()
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
Xtr, ytr, Xte, yte = X[:2500], y[:2500], X[2500:], y[2500:]


class HardtanhMLP(nn.Module):
    def __init__(self, d_in, width=64):
        super().__init__()
        self.l1 = nn.Linear(d_in, width)
        self.l2 = nn.Linear(width, width)
        self.l3 = nn.Linear(width, width)
        self.out = nn.Linear(width, 1)
        for m in (self.l1, self.l2, self.l3, self.out):
            if FIXED:
                nn.init.xavier_normal_(m.weight)
            else:
                nn.init.normal_(m.weight, mean=0.0, std=1.0)
            nn.init.zeros_(m.bias)

    def forward(self, x, return_pre=False):
        pre = []
        h = x
        for layer in (self.l1, self.l2, self.l3):
            z = layer(h)
            pre.append(z)
            h = F.hardtanh(z)
        out = self.out(h)
        return (out, pre) if return_pre else out


model = HardtanhMLP(10)
steps = 1500
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)

losses = []
g = torch.Generator().manual_seed(0)
for step in range(steps):
    idx = torch.randint(0, len(Xtr), (64,), generator=g)
    loss = F.mse_loss(model(Xtr[idx]), ytr[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
    if step % 500 == 0:
        print(f"step {step:4d} loss {loss.item():.4f}")

with torch.no_grad():
    pred = model(Xte)
    r2 = 1 - F.mse_loss(pred, yte).item() / yte.var().item()
    if PROBE:
        _, pre = model(Xtr, return_pre=True)
        sat = torch.cat([(z.abs() > 1).float().flatten() for z in pre]).mean().item()
        print(f"PROBE saturated_fraction={sat:.3f}")

k = max(1, steps // 20)
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_r2={r2:.3f}")
