"""Regression onto a smooth random teacher function with a tanh MLP.
Model: nn.Sequential 10-64-64-1 with Tanh; hidden weights drawn from N(0, 5^2) ("wide init so
units are diverse"); SGD with momentum, MSE. Inputs are standardised.
Cause of failure: with weight std 5 the pre-activations have std ~15-40, so every tanh sits in
its flat tail (derivative ~0); the hidden layers get almost no gradient and the model is
stuck with near-binary random features. FIXED=1: Xavier/Glorot init of the hidden layers.
"""
import os

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(4)
np.random.seed(4)
FIXED = os.getenv("FIXED") == "1"
PROBE = os.getenv("PROBE") == "1"

# teacher: a smooth random function of 10 standardised inputs
d, n = 10, 4000
X = np.random.randn(n, d).astype(np.float32)
W1 = np.random.randn(d, 20) / np.sqrt(d)
W2 = np.random.randn(20) / np.sqrt(20)
y = np.tanh(X @ W1 * 1.5) @ W2 + 0.3 * np.sin(X[:, 0] * X[:, 1])
y = ((y - y.mean()) / y.std()).astype(np.float32)
X = (X - X.mean(0)) / X.std(0)
X, y = torch.from_numpy(X), torch.from_numpy(y).unsqueeze(1)
X_tr, y_tr, X_te, y_te = X[:3200], y[:3200], X[3200:], y[3200:]

model = nn.Sequential(
    nn.Linear(d, 64), nn.Tanh(),
    nn.Linear(64, 64), nn.Tanh(),
    nn.Linear(64, 1),
)
for layer in (model[0], model[2]):
    if FIXED:
        nn.init.xavier_normal_(layer.weight)
    else:
        nn.init.normal_(layer.weight, mean=0.0, std=5.0)
    nn.init.zeros_(layer.bias)

opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
loss_fn = nn.MSELoss()

steps, bs = 1500, 128
losses = []
for step in range(steps):
    idx = torch.randint(0, len(X_tr), (bs,))
    loss = loss_fn(model(X_tr[idx]), y_tr[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())

if PROBE:
    # mean tanh derivative 1 - tanh^2 over all hidden units, on the training set
    with torch.no_grad():
        h1 = model[1](model[0](X_tr))
        h2 = model[3](model[2](h1))
        deriv = torch.cat([(1 - h1 ** 2).flatten(), (1 - h2 ** 2).flatten()]).mean()
    print(f"PROBE mean_tanh_derivative={deriv.item():.3g}")

with torch.no_grad():
    r2 = 1 - ((model(X_te) - y_te) ** 2).mean() / y_te.var()
print(f"FINAL loss={np.mean(losses[-steps // 20:]):.4f} r2={r2.item():.3f}")
