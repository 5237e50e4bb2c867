"""Three-arm 2-D spiral classification with a ReLU MLP.
Model: nn.Sequential 2-64-64-3 with ReLU, first-layer biases initialised to -1.6 ("sparse
features from the start"); SGD + momentum, random mini-batches of 64, cross-entropy.
Cause of failure: for most first-layer units w.x never exceeds 1.6 on the (standardised) data,
so they output zero on every input, get exactly zero gradient and never recover; the few live
units underfit the spiral. FIXED=1: first-layer biases initialised to zero.
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(16)
rng = np.random.RandomState(16)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"


def make_spiral(n_per_arm, arms=3, noise=0.2):
    pts, lab = [], []
    for k in range(arms):
        t = rng.uniform(0.25, 1.0, n_per_arm) * 3 * math.pi
        ang = t + 2 * math.pi * k / arms
        xy = np.stack([t * np.cos(ang), t * np.sin(ang)], 1)
        pts.append(xy + noise * rng.randn(n_per_arm, 2) * t[:, None] / 5)
        lab.append(np.full(n_per_arm, k))
    pts = np.concatenate(pts)
    pts = (pts - pts.mean(0)) / pts.std(0)
    return torch.tensor(pts, dtype=torch.float32), torch.tensor(np.concatenate(lab))


X, Y = make_spiral(1000)
perm = torch.randperm(len(X))
X, Y = X[perm], Y[perm]
X_train, Y_train, X_test, Y_test = X[:2400], Y[:2400], X[2400:], Y[2400:]

model = nn.Sequential(
    nn.Linear(2, 64), nn.ReLU(),
    nn.Linear(64, 64), nn.ReLU(),
    nn.Linear(64, 3),
)
nn.init.constant_(model[0].bias, 0.0 if FIXED else -1.6)

optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
criterion = nn.CrossEntropyLoss()

steps = 1500
losses = []
for step in range(steps):
    idx = torch.randint(0, len(X_train), (64,))
    loss = criterion(model(X_train[idx]), Y_train[idx])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

with torch.no_grad():
    acc = (model(X_test).argmax(1) == Y_test).float().mean().item()
    if PROBE:
        first = model[1](model[0](X_train))
        print(f"PROBE dead_fraction={(first.amax(0) == 0).float().mean().item():.2f}")
print(f"FINAL loss={np.mean(losses[-steps // 20:]):.4f} test_acc={acc:.3f}")
