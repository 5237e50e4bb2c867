"""Breast-cancer diagnosis (sklearn, 30 tabular features) with a two-hidden-layer ReLU MLP.

Custom nn.Module with F.relu, BCEWithLogitsLoss, Adam (lr 3e-3), random batches of 64,
400 steps, 80/20 split. Cause of failure: the raw measurements go in unscaled ('worst area'
in the thousands, smoothness ~0.01-0.1), so first-layer pre-activations are in the hundreds,
dominated by a few large columns; every update swings them wildly, the small features are
ignored and the loss stays high and noisy.
FIXED=1 standardises every feature with the training-set mean and std.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

data = load_breast_cancer()
X, y = data.data.astype(np.float32), data.target.astype(np.float32)
order = np.random.permutation(len(y))
tr, te = order[:455], order[455:]
if FIXED:
    mean, std = X[tr].mean(0), X[tr].std(0)
    X = (X - mean) / std
Xtr, ytr = torch.from_numpy(X[tr]), torch.from_numpy(y[tr])
Xte, yte = torch.from_numpy(X[te]), torch.from_numpy(y[te])


class TumourNet(nn.Module):
    def __init__(self, d_in):
        super().__init__()
        self.fc1 = nn.Linear(d_in, 32)
        self.fc2 = nn.Linear(32, 16)
        self.out = nn.Linear(16, 1)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.out(x).squeeze(-1)


model = TumourNet(X.shape[1])
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_fn = nn.BCEWithLogitsLoss()

steps, batch = 400, 64
history = []
for step in range(steps):
    idx = torch.randint(0, len(ytr), (batch,))
    logits = model(Xtr[idx])
    loss = loss_fn(logits, ytr[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    history.append(loss.item())
    if step % 100 == 0:
        print(f"step {step:4d} loss {loss.item():.4f}")

if PROBE:
    with torch.no_grad():
        pre = model.fc1(Xtr)
        print(f"PROBE first_layer_preact_std={pre.std().item():.3g}")

with torch.no_grad():
    test_acc = ((model(Xte) > 0).float() == yte).float().mean().item()
tail = history[-steps // 20:]
print(f"FINAL loss={np.mean(tail):.4f} test_acc={test_acc:.4f}")
