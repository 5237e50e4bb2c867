"""Digits (sklearn 8x8) classification with a BatchNorm MLP.
Model: nn.Sequential 64-128-64-10, each hidden Linear followed by BatchNorm1d, ReLU, dropout 0.1.
SGD with momentum 0.9 and weight decay, cosine-annealed lr, shuffled DataLoader, cross-entropy;
train()/eval() switched correctly.
Healthy: this run trains well. FIXED=1 changes nothing.
"""
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(20)
np.random.seed(20)
FIXED = os.environ.get("FIXED", "0") == "1"  # nothing to fix in this run
PROBE = os.environ.get("PROBE", "0") == "1"

X, y = load_digits(return_X_y=True)
idx = np.random.permutation(len(X))
X, y = X[idx], y[idx]
mu, sd = X[:1400].mean(0), X[:1400].std(0) + 1e-6
X = ((X - mu) / sd).astype(np.float32)
X_tr, y_tr = torch.from_numpy(X[:1400]), torch.from_numpy(y[:1400])
X_te, y_te = torch.from_numpy(X[1400:]), torch.from_numpy(y[1400:])
loader = DataLoader(TensorDataset(X_tr, y_tr), batch_size=64, shuffle=True, drop_last=True)

model = nn.Sequential(
    nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.1),
    nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.1),
    nn.Linear(64, 10),
)
epochs = 30
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(loader))
criterion = nn.CrossEntropyLoss()

history = []
for epoch in range(epochs):
    model.train()
    for xb, yb in loader:
        loss = criterion(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.append(loss.item())

model.eval()
with torch.no_grad():
    test_acc = (model(X_te).argmax(1) == y_te).float().mean().item()
if PROBE:
    print(f"PROBE test_acc_over_chance={test_acc / 0.1:.2f}")
print(f"FINAL loss={np.mean(history[-len(history) // 20:]):.4f} test_acc={test_acc:.3f}")
