"""Two-regime synthetic regression with a gated mixture of two linear experts.
Model: a linear gate routes each sample to one expert through a hard switch,
torch.round(torch.sigmoid(gate(x))); RMSprop with a StepLR schedule, MSE loss.
Cause of failure: the hard switch is a step function with zero derivative almost everywhere,
so the gate never gets a gradient and never finds the regime boundary; the experts must fit
both regimes under a random split. FIXED=1: use the smooth sigmoid gate (soft routing).
"""
import os

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(2)
np.random.seed(2)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

d = 12
n = 4000
X = np.random.randn(n, d).astype(np.float32)
boundary = np.random.randn(d).astype(np.float32)
boundary /= np.linalg.norm(boundary)
w_a = np.random.randn(d).astype(np.float32)
w_b = np.random.randn(d).astype(np.float32)
regime = (X @ boundary > 0.3)
y = np.where(regime, X @ w_a + 3.0, X @ w_b - 3.0) + 0.1 * np.random.randn(n)
y = ((y - y.mean()) / y.std()).astype(np.float32)
X, y = torch.from_numpy(X), torch.from_numpy(y)
X_tr, y_tr, X_te, y_te = X[:3200], y[:3200], X[3200:], y[3200:]


class SwitchRegressor(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.gate = nn.Linear(d, 1)
        self.expert_a = nn.Linear(d, 1)
        self.expert_b = nn.Linear(d, 1)

    def forward(self, x):
        p = torch.sigmoid(self.gate(x))
        g = p if FIXED else torch.round(p)
        return (g * self.expert_a(x) + (1 - g) * self.expert_b(x)).squeeze(-1)


model = SwitchRegressor(d)
opt = torch.optim.RMSprop(model.parameters(), lr=5e-3)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=700, gamma=0.3)
mse = nn.MSELoss()

steps, bs = 1500, 128
losses, gate_grad = [], []
for step in range(steps):
    idx = torch.randint(0, len(X_tr), (bs,))
    loss = mse(model(X_tr[idx]), y_tr[idx])
    opt.zero_grad()
    loss.backward()
    if PROBE and step % 100 == 0:
        gate_grad.append(model.gate.weight.grad.norm().item())
    opt.step()
    sched.step()
    losses.append(loss.item())

with torch.no_grad():
    pred = model(X_te)
    r2 = 1 - ((pred - y_te) ** 2).mean().item() / y_te.var().item()
if PROBE:
    print(f"PROBE gate_grad_norm={np.mean(gate_grad):.3g}")
tail = steps // 20
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} r2={r2:.3f}")
