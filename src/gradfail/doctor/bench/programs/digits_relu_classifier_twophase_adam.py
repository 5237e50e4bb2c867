"""Digits (sklearn 8x8) classification with a ReLU MLP (64-64-64-10) trained in two Adam phases.
Training: a 50-step "head start" at a high learning rate, then 1000 steps at lr 1e-3;
mini-batches of 64, cross-entropy. Pixels are standardised.
Cause of failure: the head-start lr (0.2) is a spike 200x above the main one; Adam's first
updates push most second-layer units to a negative pre-activation on every input. Those ReLUs
are dead (zero gradient) for the rest of the run and the classifier underfits.
FIXED=1: the head-start phase uses the main learning rate 1e-3 (no spike).
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(14)
np.random.seed(14)
FIXED = os.environ.get("FIXED", "0") == "1"
PROBE = os.environ.get("PROBE", "0") == "1"

X, y = load_digits(return_X_y=True)
X = (X - X.mean(0)) / (X.std(0) + 1e-8)
X = torch.as_tensor(X, dtype=torch.float32)
y = torch.as_tensor(y)
perm = torch.randperm(len(X))
X_tr, y_tr = X[perm[:1400]], y[perm[:1400]]
X_te, y_te = X[perm[1400:]], y[perm[1400:]]


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(64, 64), nn.ReLU(),
            nn.Linear(64, 64), nn.ReLU(),
        )
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.body(x))


clf = Classifier()
opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
head_start_lr = 1e-3 if FIXED else 0.2
schedule = [(50, head_start_lr), (1000, 1e-3)]

losses = []
for n_steps, lr in schedule:
    for group in opt.param_groups:
        group["lr"] = lr
    for _ in range(n_steps):
        idx = torch.randint(0, len(X_tr), (64,))
        loss = F.cross_entropy(clf(X_tr[idx]), y_tr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())

with torch.no_grad():
    test_acc = (clf(X_te).argmax(1) == y_te).float().mean().item()
    if PROBE:
        h2 = clf.body(X_tr)  # output of the second ReLU layer
        print(f"PROBE dead_fraction={(h2.amax(0) == 0).float().mean().item():.2f}")
print(f"FINAL loss={np.mean(losses[-len(losses) // 20:]):.4f} test_acc={test_acc:.3f}")
