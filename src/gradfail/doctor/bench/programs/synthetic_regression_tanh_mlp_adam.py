"""Nonlinear synthetic regression (8 standardised features) with a tanh MLP.
Model: 8-64-64-1 with torch.tanh in a custom forward; Xavier/Glorot (tanh gain) init, zero
biases. Adam (lr 2e-3), random mini-batches of 128, MSE loss; targets standardised.
Healthy: this run trains well. FIXED=1 changes nothing.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(21)
np.random.seed(21)
FIXED = os.environ.get("FIXED") == "1"  # healthy: no remedy to apply
PROBE = os.environ.get("PROBE") == "1"

n, d = 5000, 8
X = np.random.randn(n, d)
y = (np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.5 * X[:, 3] ** 2
     - np.tanh(X[:, 4] + X[:, 5]) + 0.3 * X[:, 6] + 0.1 * np.random.randn(n))
X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
y = ((y - y.mean()) / y.std()).astype(np.float32)
X, y = torch.from_numpy(X), torch.from_numpy(y)
X_tr, y_tr, X_te, y_te = X[:4000], y[:4000], X[4000:], y[4000:]


class TanhMLP(nn.Module):
    def __init__(self, d_in, hidden=64):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, 1)
        gain = nn.init.calculate_gain("tanh")
        for fc in (self.fc1, self.fc2, self.fc3):
            nn.init.xavier_uniform_(fc.weight, gain=gain if fc is not self.fc3 else 1.0)
            nn.init.zeros_(fc.bias)

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        h = torch.tanh(self.fc2(h))
        return self.fc3(h).squeeze(-1)


net = TanhMLP(d)
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
steps, bs = 1500, 128
losses = []
for step in range(steps):
    idx = torch.randint(0, len(X_tr), (bs,))
    loss = F.mse_loss(net(X_tr[idx]), y_tr[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())

with torch.no_grad():
    r2 = 1 - F.mse_loss(net(X_te), y_te).item() / y_te.var().item()
if PROBE:
    # r2 of always predicting the mean is 0; a healthy fit is far above it
    print(f"PROBE test_r2_over_mean_predictor={r2:.3f}")
print(f"FINAL loss={np.mean(losses[-steps // 20:]):.4f} r2={r2:.3f}")
