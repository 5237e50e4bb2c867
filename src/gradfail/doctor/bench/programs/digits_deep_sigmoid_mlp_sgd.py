"""Digits (sklearn 8x8) classification with a deep fully connected network.
Model: nn.Sequential of 10 hidden Linear(64)+Sigmoid layers, PyTorch default init, linear
classifier; plain mini-batch SGD (lr 0.1), cross-entropy.
Cause of failure: each sigmoid scales the backward signal by at most 0.25 and the default
weights do not compensate, so the gradient shrinks geometrically toward the input; the first
layers barely move and the loss stays near chance. FIXED=1: ReLU with He (Kaiming) init.
"""
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(8)
np.random.seed(8)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

X, y = load_digits(return_X_y=True)
X = (X - X.mean(0)) / (X.std(0) + 1e-8)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.long)
perm = torch.randperm(len(X))
X, y = X[perm], y[perm]
X_train, y_train, X_test, y_test = X[:1400], y[:1400], X[1400:], y[1400:]

depth, width = 10, 64
layers = []
d_in = 64
for _ in range(depth):
    lin = nn.Linear(d_in, width)
    if FIXED:
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
    layers += [lin, nn.ReLU() if FIXED else nn.Sigmoid()]
    d_in = width
layers.append(nn.Linear(width, 10))
model = nn.Sequential(*layers)
linears = [m for m in model if isinstance(m, nn.Linear)]

criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

steps, batch = 1200, 64
losses, ratios = [], []
for step in range(steps):
    idx = torch.randint(0, len(X_train), (batch,))
    loss = criterion(model(X_train[idx]), y_train[idx])
    optimizer.zero_grad()
    loss.backward()
    if PROBE and step % 100 == 0:
        ratios.append(linears[0].weight.grad.norm().item()
                      / linears[-1].weight.grad.norm().item())
    optimizer.step()
    losses.append(loss.item())

with torch.no_grad():
    test_acc = (model(X_test).argmax(1) == y_test).float().mean().item()
if PROBE:
    print(f"PROBE first_to_last_layer_grad_norm={np.median(ratios):.3g}")
print(f"FINAL loss={np.mean(losses[-steps // 20:]):.4f} test_acc={test_acc:.3f}")
