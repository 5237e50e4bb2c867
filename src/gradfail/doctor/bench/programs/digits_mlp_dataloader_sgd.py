"""Digits (sklearn 8x8, standardised) with a 2-hidden-layer ReLU MLP in nn.Sequential,
plain SGD on mini-batches of 32 from a shuffling DataLoader, cross-entropy, 25 epochs.

Failure: the learning rate is 1e-3, two orders of magnitude below what this well-conditioned
problem tolerates. Gradients are consistent from step to step, but every update moves
the weights by a minute fraction, so the loss slides down smoothly and very slowly and
the run ends far from trained. FIXED=1 uses lr=0.1 (x100).
"""
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(10)
np.random.seed(10)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

X, y = load_digits(return_X_y=True)
perm = np.random.permutation(len(y))
X, y = X[perm], y[perm]
X_tr, X_te, y_tr, y_te = X[:1500], X[1500:], y[:1500], y[1500:]
mu, sd = X_tr.mean(0), X_tr.std(0) + 1e-6
X_tr, X_te = (X_tr - mu) / sd, (X_te - mu) / sd

train_ds = TensorDataset(torch.tensor(X_tr, dtype=torch.float32), torch.tensor(y_tr))
X_te, y_te = torch.tensor(X_te, dtype=torch.float32), torch.tensor(y_te)
loader = DataLoader(train_ds, batch_size=32, shuffle=True, drop_last=True)

model = nn.Sequential(
    nn.Linear(64, 128), nn.ReLU(),
    nn.Linear(128, 64), nn.ReLU(),
    nn.Linear(64, 10),
)
criterion = nn.CrossEntropyLoss()
LR = 0.1 if FIXED else 1e-3
optimizer = torch.optim.SGD(model.parameters(), lr=LR)

losses, rel_updates = [], []
for epoch in range(25):
    for xb, yb in loader:
        if PROBE:
            before = torch.cat([p.detach().flatten() for p in model.parameters()])
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if PROBE:
            after = torch.cat([p.detach().flatten() for p in model.parameters()])
            rel_updates.append(((after - before).norm() / before.norm()).item())
    if epoch % 5 == 0:
        print(f"epoch {epoch:2d}  loss {np.mean(losses[-len(loader):]):.4f}")

with torch.no_grad():
    test_acc = (model(X_te).argmax(1) == y_te).float().mean().item()

if PROBE:
    # mean per-step relative weight change ||dtheta|| / ||theta||
    print(f"PROBE relative_update_per_step={np.mean(rel_updates):.2e}")

tail = losses[-len(losses) // 20:]
print(f"FINAL loss={np.mean(tail):.4f} test_acc={test_acc:.3f}")
