"""Breast-cancer diagnosis (30 standardised features) with a highway network.

Model: input projection to 32 units, three highway layers y = T*relu(Hx) + (1-T)*x whose
transform gates T = sigmoid(W_T x + b_T) use the usual negative gate bias (-1), dropout,
and a one-logit head with BCEWithLogitsLoss. RMSprop with StepLR, DataLoader batches of 32.
Healthy: the sigmoid gates stay in their working range and the model trains well;
FIXED=1 changes nothing.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"   # nothing to fix in this program
PROBE = os.environ.get("PROBE") == "1"

data = load_breast_cancer()
X, y = data.data.astype(np.float32), data.target.astype(np.float32)
order = np.random.permutation(len(X))
X, y = X[order], y[order]
n_train = 455
mu, sd = X[:n_train].mean(0), X[:n_train].std(0)
X = (X - mu) / sd
X_train, y_train = torch.from_numpy(X[:n_train]), torch.from_numpy(y[:n_train])
X_test, y_test = torch.from_numpy(X[n_train:]), torch.from_numpy(y[n_train:])
loader = DataLoader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True)


class Highway(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.transform = nn.Linear(d, d)
        self.gate = nn.Linear(d, d)
        nn.init.constant_(self.gate.bias, -1.0)

    def forward(self, x):
        t = torch.sigmoid(self.gate(x))
        return t * F.relu(self.transform(x)) + (1 - t) * x, t


class HighwayNet(nn.Module):
    def __init__(self, d_in, d=32, depth=3):
        super().__init__()
        self.inp = nn.Linear(d_in, d)
        self.blocks = nn.ModuleList(Highway(d) for _ in range(depth))
        self.drop = nn.Dropout(0.1)
        self.out = nn.Linear(d, 1)

    def forward(self, x, gates=None):
        h = F.relu(self.inp(x))
        for block in self.blocks:
            h, t = block(h)
            if gates is not None:
                gates.append(t)
        return self.out(self.drop(h)).squeeze(1)


net = HighwayNet(30)
opt = torch.optim.RMSprop(net.parameters(), lr=1e-3)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
criterion = nn.BCEWithLogitsLoss()

losses = []
for epoch in range(30):
    net.train()
    for xb, yb in loader:
        opt.zero_grad()
        loss = criterion(net(xb), yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sched.step()
    if epoch % 10 == 0:
        print(f"epoch {epoch:2d} loss {np.mean(losses[-len(loader):]):.4f}")

net.eval()
with torch.no_grad():
    acc = ((net(X_test) > 0).float() == y_test).float().mean().item()
    if PROBE:
        chance = max(y_test.mean().item(), 1 - y_test.mean().item())
        print(f"PROBE test_acc_minus_majority={acc - chance:.3f}")

k = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_acc={acc:.3f}")
