"""Digits (sklearn 8x8) classifier with integer-quantised hidden activations.
Model: nn.Sequential 64-48-48-10, a Quantize module (torch.round) after each ReLU to mimic an
integer inference target; Adam, shuffled DataLoader mini-batches, cross-entropy.
Cause of failure: torch.round is piecewise constant (derivative zero almost everywhere), so
the layers below the quantisers get no gradient and keep their random initial weights.
FIXED=1: the quantiser uses a straight-through estimator (round forward, identity backward).
"""
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(1)
np.random.seed(1)
FIXED = bool(int(os.getenv("FIXED", "0")))
PROBE = bool(int(os.getenv("PROBE", "0")))

digits = load_digits()
X = digits.data.astype(np.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = digits.target
perm = np.random.permutation(len(X))
X, y = X[perm], y[perm]
n_tr = 1400
train_ds = TensorDataset(torch.from_numpy(X[:n_tr]), torch.from_numpy(y[:n_tr]))
X_te, y_te = torch.from_numpy(X[n_tr:]), torch.from_numpy(y[n_tr:])
loader = DataLoader(train_ds, batch_size=64, shuffle=True, drop_last=True)


class Quantize(nn.Module):
    """Round activations to integers (what the int8 target computes)."""

    def forward(self, x):
        if FIXED:
            return x + (torch.round(x) - x).detach()
        return torch.round(x)


model = nn.Sequential(
    nn.Linear(64, 48), nn.ReLU(), Quantize(),
    nn.Linear(48, 48), nn.ReLU(), Quantize(),
    nn.Linear(48, 10),
)
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.Adam(model.parameters(), lr=2e-3)

epochs = 40
losses, probe_norms = [], []
step = 0
for epoch in range(epochs):
    for xb, yb in loader:
        out = model(xb)
        loss = loss_fn(out, yb)
        opt.zero_grad()
        loss.backward()
        if PROBE and step % 50 == 0:
            probe_norms.append(model[0].weight.grad.norm().item())
        opt.step()
        losses.append(loss.item())
        step += 1

model.eval()
with torch.no_grad():
    test_acc = (model(X_te).argmax(1) == y_te).float().mean().item()
if PROBE:
    print("PROBE first_layer_grad_norm=%.3g" % float(np.mean(probe_norms)))
k = max(1, len(losses) // 20)
print("FINAL loss=%.4f test_acc=%.3f" % (np.mean(losses[-k:]), test_acc))
