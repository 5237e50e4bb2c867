"""Friedman #1 regression with a random-Fourier-feature model and a Huber loss.

Model: 10 standardised inputs -> 512 fixed random cosine features (RBF-kernel approximation) ->
trainable linear read-out (weights + bias). Loss: Huber (delta 1) on the standardised target.
Optimizer: plain SGD (no momentum), lr 5.0, mini-batches of 64 from a shuffled DataLoader.
Cause: the step is above the stability limit 2/lambda_max of the read-out's curvature (the bias
direction alone has curvature ~1), so every step overshoots; the Huber loss keeps the gradient
bounded, so the loss just bounces at a high level, finite. FIXED=1 lowers the lr to 1.0.
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_friedman1
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
np.random.seed(0)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

LR = 1.0 if FIXED else 5.0

X, y = make_friedman1(n_samples=5000, n_features=10, noise=0.5, random_state=0)
X = (X - X.mean(0)) / X.std(0)
y = (y - y.mean()) / y.std()
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32)
Xtr, ytr, Xte, yte = X[:4000], y[:4000], X[4000:], y[4000:]


class RandomFourierRegressor(nn.Module):
    def __init__(self, d_in=10, n_feat=512, bandwidth=2.0):
        super().__init__()
        self.register_buffer("omega", torch.randn(d_in, n_feat) / bandwidth)
        self.register_buffer("phase", torch.rand(n_feat) * 2 * math.pi)
        self.scale = math.sqrt(2.0 / n_feat)
        self.readout = nn.Linear(n_feat, 1)

    def features(self, x):
        return torch.cos(x @ self.omega + self.phase) * self.scale

    def forward(self, x):
        return self.readout(self.features(x)).squeeze(-1)


model = RandomFourierRegressor()
opt = torch.optim.SGD(model.parameters(), lr=LR)
loader = DataLoader(TensorDataset(Xtr, ytr), batch_size=64, shuffle=True)

if PROBE:
    # curvature of the Huber loss at the start: the Hessian w.r.t. (weights, bias) is the
    # second-moment matrix of [features, 1] over samples inside the quadratic zone |r| < delta
    with torch.no_grad():
        Phi = torch.cat([model.features(Xtr), torch.ones(len(Xtr), 1)], dim=1)
        inside = ((model(Xtr) - ytr).abs() < 1.0).float().unsqueeze(1)
        H = (Phi * inside).T @ Phi / len(Xtr)
        lam_max = torch.linalg.eigvalsh(H)[-1].item()

EPOCHS = 24
losses = []
for epoch in range(EPOCHS):
    for xb, yb in loader:
        loss = F.huber_loss(model(xb), yb, delta=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    if epoch % 6 == 0:
        print(f"epoch {epoch} loss {np.mean(losses[-len(loader):]):.4f}")

with torch.no_grad():
    pred = model(Xte)
    r2 = 1 - ((pred - yte) ** 2).mean().item() / yte.var().item()

if PROBE:
    # SGD on a quadratic is stable only for lr * lambda_max < 2
    print(f"PROBE lr_times_lambda_max={LR * lam_max:.2f}")

tail = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} r2={r2:.3f}")
