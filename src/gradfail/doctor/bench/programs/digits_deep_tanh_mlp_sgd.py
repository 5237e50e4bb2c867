"""Digit classification (sklearn 8x8 digits) with a 24-layer tanh MLP, SGD + momentum.

The hidden layers are initialised with weights N(0, (4/sqrt(fan_in))^2), i.e. a gain of 4
instead of 1.  In a tanh stack that puts the network in the chaotic regime: every layer
multiplies the backward signal by more than 1, so the gradient reaching the first layers
is ~100 times larger than at the top, the early layers are thrown around on every
step and the loss stays near chance.  FIXED=1 uses gain 1 (LeCun/Xavier-style init).
"""
import os
import math
import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(1)
np.random.seed(1)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

digits = load_digits()
X = digits.data.astype(np.float32)
y = digits.target.astype(np.int64)
perm = np.random.permutation(len(X))
X, y = X[perm], y[perm]
mu, sd = X[:1400].mean(0), X[:1400].std(0) + 1e-6
X = (X - mu) / sd
Xtr, ytr = torch.from_numpy(X[:1400]), torch.from_numpy(y[:1400])
Xte, yte = torch.from_numpy(X[1400:]), torch.from_numpy(y[1400:])

DEPTH, WIDTH, STEPS, BS = 24, 64, 700, 64
INIT_GAIN = 1.0 if FIXED else 4.0


class DeepTanhNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.ModuleList(
            [nn.Linear(64 if i == 0 else WIDTH, WIDTH) for i in range(DEPTH)])
        self.classifier = nn.Linear(WIDTH, 10)
        for layer in self.hidden:
            nn.init.normal_(layer.weight, 0.0, INIT_GAIN / math.sqrt(layer.in_features))
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        for layer in self.hidden:
            x = torch.tanh(layer(x))
        return self.classifier(x)


model = DeepTanhNet()
opt = torch.optim.SGD(model.parameters(), lr=0.003, momentum=0.9)
ce = nn.CrossEntropyLoss()

losses = []
for it in range(STEPS):
    idx = torch.randint(0, len(Xtr), (BS,))
    loss = ce(model(Xtr[idx]), ytr[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if (it + 1) % 175 == 0:
        print(f"iter {it + 1}: loss {np.mean(losses[-175:]):.3f}")

if PROBE:
    model.zero_grad()
    ce(model(Xtr), ytr).backward()
    first = model.hidden[0].weight.grad.norm().item()
    last = model.hidden[-1].weight.grad.norm().item()
    print(f"PROBE first_to_last_layer_grad_norm={first / last:.3g}")

with torch.no_grad():
    acc = (model(Xte).argmax(1) == yte).float().mean().item()
k = STEPS // 20
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_acc={acc:.3f}")
