"""Binarised-activation MLP on a synthetic 4-class, multi-cluster classification task.
Model: 16-32-32-4, hidden activations binarised with torch.sign in a hand-written forward();
SGD with momentum on random mini-batches, cross-entropy.
Cause of failure: torch.sign has zero derivative almost everywhere, so no gradient reaches
the two hidden layers; only the output layer learns, on top of random binary features.
FIXED=1: binarise with a straight-through estimator (sign forward, clipped identity backward).
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_classification

torch.manual_seed(0)
np.random.seed(0)

FIXED = os.environ.get("FIXED", "0") == "1"
PROBE = os.environ.get("PROBE", "0") == "1"

X, y = make_classification(n_samples=3000, n_features=16, n_informative=10,
                           n_redundant=2, n_classes=4, n_clusters_per_class=3,
                           class_sep=1.5, random_state=0)
X = (X - X.mean(0)) / X.std(0)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y)
Xtr, ytr, Xte, yte = X[:2400], y[:2400], X[2400:], y[2400:]


def binarize(z):
    if FIXED:
        # straight-through: forward sign(z), backward d/dz clamp(z, -1, 1)
        zc = torch.clamp(z, -1.0, 1.0)
        return zc + (torch.sign(z) - zc).detach()
    return torch.sign(z)


class BinaryNet(nn.Module):
    def __init__(self, d_in, hidden, n_out):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x):
        h = binarize(self.fc1(x))
        h = binarize(self.fc2(h))
        return self.out(h)


model = BinaryNet(16, 32, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

steps, bs = 1500, 64
losses = []
probe_vals = []
for step in range(steps):
    idx = torch.randint(0, len(Xtr), (bs,))
    logits = model(Xtr[idx])
    loss = F.cross_entropy(logits, ytr[idx])
    opt.zero_grad()
    loss.backward()
    if PROBE and step % 100 == 0:
        g = model.fc1.weight.grad
        probe_vals.append(0.0 if g is None else g.norm().item())
    opt.step()
    losses.append(loss.item())

with torch.no_grad():
    test_acc = (model(Xte).argmax(1) == yte).float().mean().item()

if PROBE:
    print(f"PROBE first_layer_grad_norm={np.mean(probe_vals):.3g}")
tail = max(1, steps // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_acc={test_acc:.3f}")
