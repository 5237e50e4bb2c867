"""Two interleaved 2-D spirals (binary) with a hand-written ReLU MLP (2-48-48-1).
Model: raw nn.Parameter weights and a custom forward using F.relu; first-layer bias starts at
-2.5 ("so only strong features fire"). Adam with cosine lr, BCE-with-logits, mini-batches of 64.
Cause of failure: for most first-layer units w.x < 2.5 on every (standardised) point, so their
ReLU outputs zero everywhere, the gradient is exactly zero and they stay dead all run; the few
live units cannot carve out the spirals. FIXED=1: F.leaky_relu (slope 0.1) instead of F.relu.
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(17)
rng = np.random.RandomState(17)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

n = 1500
t = np.sqrt(rng.uniform(0, 1, n)) * 3.5 * math.pi
arm = np.stack([t * np.cos(t), t * np.sin(t)], 1) + 0.3 * rng.randn(n, 2)
X = np.concatenate([arm, -arm])
y = np.concatenate([np.zeros(n), np.ones(n)])
order = rng.permutation(2 * n)
X, y = X[order], y[order]
X = (X - X.mean(0)) / X.std(0)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32)
X_train, y_train, X_test, y_test = X[:2400], y[:2400], X[2400:], y[2400:]

H = 48
W1 = nn.Parameter(torch.randn(2, H) * math.sqrt(1 / 2))
b1 = nn.Parameter(torch.full((H,), -2.5))
W2 = nn.Parameter(torch.randn(H, H) * math.sqrt(2 / H))
b2 = nn.Parameter(torch.zeros(H))
W3 = nn.Parameter(torch.randn(H, 1) * math.sqrt(1 / H))
b3 = nn.Parameter(torch.zeros(1))
params = [W1, b1, W2, b2, W3, b3]


def act(z):
    return F.leaky_relu(z, 0.1) if FIXED else F.relu(z)


def forward(x):
    h = act(x @ W1 + b1)
    h = act(h @ W2 + b2)
    return (h @ W3 + b3).squeeze(-1)


steps = 1500
opt = torch.optim.Adam(params, lr=1e-2)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=1e-3)
losses = []
for step in range(steps):
    i = torch.randint(0, len(X_train), (64,))
    loss = F.binary_cross_entropy_with_logits(forward(X_train[i]), y_train[i])
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())

with torch.no_grad():
    acc = ((forward(X_test) > 0).float() == y_test).float().mean().item()
    if PROBE:
        pre = X_train @ W1 + b1
        print(f"PROBE dead_fraction={(pre.amax(0) <= 0).float().mean().item():.2f}")
print(f"FINAL loss={np.mean(losses[-steps // 20:]):.4f} test_acc={acc:.3f}")
