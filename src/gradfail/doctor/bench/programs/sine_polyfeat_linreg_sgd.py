"""Polynomial curve fitting: linear regression on degree-10 polynomial features.

Task: fit a noisy smooth 1-D signal y(x) on [-1, 1] with a linear model over the
features x, x^2, ..., x^10 (each feature standardised to zero mean / unit variance).
Optimizer: full-batch plain SGD, MSE loss.
Cause of failure: the monomial features are almost collinear, so the loss surface is a
long narrow valley; the step that is safe for the steep direction barely moves along the
flat ones and the fit creeps. FIXED=1 whitens (decorrelates) the features with PCA first.
"""
import os
import math
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)
np.random.seed(0)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

n, degree = 400, 10
x = np.random.uniform(-1, 1, n)
y = np.sin(7 * x) + 0.05 * np.random.randn(n)

feats = np.stack([x ** k for k in range(1, degree + 1)], axis=1)
feats = (feats - feats.mean(0)) / feats.std(0)
if FIXED:
    cov = feats.T @ feats / n
    evals, evecs = np.linalg.eigh(cov)
    feats = feats @ evecs / np.sqrt(evals + 1e-12)

X = torch.tensor(feats, dtype=torch.float32)
Y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)

model = nn.Linear(degree, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.15)
loss_fn = nn.MSELoss()

steps = 2000
history = []
for step in range(steps):
    opt.zero_grad()
    loss = loss_fn(model(X), Y)
    loss.backward()
    opt.step()
    history.append(loss.item())
    if step % 500 == 0:
        print(f"step {step:5d}  mse {loss.item():.4f}")

with torch.no_grad():
    pred = model(X)
    r2 = 1 - ((pred - Y) ** 2).sum().item() / ((Y - Y.mean()) ** 2).sum().item()

if PROBE:
    # Hessian of the MSE w.r.t. (weights, bias) is 2/n [X 1]^T [X 1]
    Xb = torch.cat([X, torch.ones(n, 1)], dim=1).double()
    H = 2.0 * Xb.T @ Xb / n
    ev = torch.linalg.eigvalsh(H)
    print(f"PROBE hessian_condition={(ev.max() / ev.min()).item():.3g}")

tail = history[-max(1, steps // 20):]
print(f"FINAL loss={sum(tail) / len(tail):.4f} r2={r2:.4f}")
