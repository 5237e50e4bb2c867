"""Piecewise-linear regression surface fitted by a top-1 mixture of experts.

Data: 4-d inputs; the plane is split into four angular sectors and each sector has its own
linear law. Model: a linear router picks one of 4 linear experts per sample (top-1),
trained with RMSprop + StepLR on DataLoader mini-batches, MSE loss.
Cause: the routing weight is the hard one-hot of argmax(router logits), a step function with
zero derivative, so the router receives no gradient and never learns the sectors; experts are
stuck with random partitions. FIXED=1 routes with a straight-through estimator (hard one-hot
forward, softmax gradient backward).
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(1)
np.random.seed(1)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

# ---- data ---------------------------------------------------------------------------------
N, D, K = 6000, 4, 4
X = torch.rand(N, D) * 4 - 2
angle = torch.atan2(X[:, 1], X[:, 0])
sector = ((angle + np.pi) / (np.pi / 2)).long().clamp(max=K - 1)
W_true = torch.randn(K, D) * 1.5
b_true = torch.randn(K) * 2.0
y = (X * W_true[sector]).sum(1) + b_true[sector] + 0.05 * torch.randn(N)
y = ((y - y.mean()) / y.std()).unsqueeze(1)
X_tr, y_tr, X_te, y_te = X[:5000], y[:5000], X[5000:], y[5000:]
loader = DataLoader(TensorDataset(X_tr, y_tr), batch_size=64, shuffle=True, drop_last=True)


class Top1MoE(nn.Module):
    def __init__(self, d, n_experts):
        super().__init__()
        self.router = nn.Linear(d, n_experts)
        self.experts = nn.ModuleList(nn.Linear(d, 1) for _ in range(n_experts))

    def gates(self, x):
        logits = self.router(x)
        hard = F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).float()
        if FIXED:
            soft = logits.softmax(dim=-1)
            return hard + soft - soft.detach()
        return hard

    def forward(self, x):
        g = self.gates(x)                                         # (B, K)
        outs = torch.cat([e(x) for e in self.experts], dim=1)     # (B, K)
        return (g * outs).sum(dim=1, keepdim=True)


model = Top1MoE(D, K)
opt = torch.optim.RMSprop(model.parameters(), lr=2e-3)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=500, gamma=0.5)

losses, router_g, expert_g = [], [], []
step = 0
for epoch in range(20):
    for xb, yb in loader:
        pred = model(xb)
        loss = F.mse_loss(pred, yb)
        opt.zero_grad()
        loss.backward()
        if PROBE:
            rg = model.router.weight.grad
            router_g.append(0.0 if rg is None else float(rg.norm()))
            expert_g.append(float(torch.cat([p.grad.flatten() for p in model.experts.parameters()
                                             if p.grad is not None]).norm()))
        opt.step()
        sched.step()
        losses.append(loss.item())
        step += 1
    if epoch % 5 == 0:
        print(f"epoch {epoch:2d}  loss {np.mean(losses[-50:]):.4f}")

with torch.no_grad():
    te_mse = F.mse_loss(model(X_te), y_te).item()
r2 = 1 - te_mse / y_te.var().item()

if PROBE:
    print(f"PROBE router_to_expert_grad_norm_ratio={np.mean(router_g) / np.mean(expert_g):.3g}")
k = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_r2={r2:.3f}")
