"""Friedman #1 synthetic regression with a deep tanh network.
Model: input projection, 12 hidden 64-unit layers h = torch.tanh(W h + b) in a custom forward,
linear output; hidden weights N(0, 0.05^2) ("small init for stability"). SGD + Nesterov, cosine lr, MSE.
Cause of failure: each layer scales the backward signal by about 0.05*sqrt(64)*tanh' ~ 0.4, so
the gradient reaching the first layers is ~1e-5 of the last layer's; the early layers do not
learn and the fit stays at the mean. FIXED=1: residual connections, h = h + tanh(W h + b).
"""
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import make_friedman1

torch.manual_seed(9)
np.random.seed(9)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

X, y = make_friedman1(n_samples=3000, n_features=10, noise=0.5, random_state=9)
X = (X - X.mean(0)) / X.std(0)
y = (y - y.mean()) / y.std()
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32)
X_tr, y_tr, X_va, y_va = X[:2500], y[:2500], X[2500:], y[2500:]


class DeepTanh(nn.Module):
    def __init__(self, d_in=10, width=64, depth=12):
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.out = nn.Linear(width, 1)
        for lin in self.hidden:
            nn.init.normal_(lin.weight, std=0.05)
            nn.init.zeros_(lin.bias)

    def forward(self, x, states=None):
        h = torch.tanh(self.inp(x))
        for lin in self.hidden:
            if states is not None:
                h.retain_grad()
                states.append(h)
            if FIXED:
                h = h + torch.tanh(lin(h))
            else:
                h = torch.tanh(lin(h))
        return self.out(h).squeeze(-1)


net = DeepTanh()
steps = 1000
opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9, nesterov=True)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)

losses, probe = [], []
for step in range(steps):
    idx = torch.randint(0, len(X_tr), (128,))
    states = [] if (PROBE and step % 50 == 0) else None
    loss = nn.functional.mse_loss(net(X_tr[idx], states), y_tr[idx])
    opt.zero_grad()
    loss.backward()
    if states:
        # backward signal at the first hidden layer relative to the last one
        probe.append(states[0].grad.norm().item() / states[-1].grad.norm().item())
    opt.step()
    sched.step()
    losses.append(loss.item())

with torch.no_grad():
    r2 = 1 - nn.functional.mse_loss(net(X_va), y_va).item() / y_va.var().item()
if PROBE:
    print(f"PROBE first_to_last_layer_grad_norm={np.median(probe):.3g}")
print(f"FINAL loss={np.mean(losses[-50:]):.4f} r2={r2:.3f}")
