"""Residual tanh MLP regressing a smooth synthetic response surface (8 inputs, 3000 samples).

Model: Linear(8,64), three blocks x + Linear(tanh(Linear(x))), Linear(64,1); MSE; heavy-ball
SGD (momentum 0.9) + clip_grad_norm_(1.0), random batches of 128, 1000 steps.
Cause of failure: the learning rate (0.3) is well above the heavy-ball stability limit
2(1+beta)/lambda_max of the loss curvature, so updates overshoot along the sharpest
direction and the loss bounces at a high level instead of converging (finite throughout).
FIXED=1 lowers the learning rate to 0.02.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(13)
np.random.seed(13)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"
probe_gen = torch.Generator().manual_seed(13)

n, d = 3000, 8
X = np.random.randn(n, d)
y = np.sin(X[:, 0]) * X[:, 1] + 0.5 * np.tanh(X[:, 2] * X[:, 3]) + 0.3 * X[:, 4] ** 2 - 0.4 * X[:, 5] + 0.1 * np.random.randn(n)
y = (y - y.mean()) / y.std()
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)


class Block(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.a = nn.Linear(w, w)
        self.b = nn.Linear(w, w)

    def forward(self, x):
        return x + self.b(torch.tanh(self.a(x)))


class ResMLP(nn.Module):
    def __init__(self, w=64):
        super().__init__()
        self.inp = nn.Linear(d, w)
        self.blocks = nn.Sequential(Block(w), Block(w), Block(w))
        self.out = nn.Linear(w, 1)

    def forward(self, x):
        return self.out(self.blocks(self.inp(x)))


net = ResMLP()
lr = 0.02 if FIXED else 0.3
momentum = 0.9
opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)


def sharpness(iters=20):
    params = list(net.parameters())
    g = torch.autograd.grad(F.mse_loss(net(X[:1000]), y[:1000]), params, create_graph=True)
    v = [torch.randn(p.shape, generator=probe_gen) for p in params]
    lam = 0.0
    for _ in range(iters):
        nrm = torch.sqrt(sum((u ** 2).sum() for u in v))
        v = [u / nrm for u in v]
        hv = torch.autograd.grad(g, params, grad_outputs=v, retain_graph=True)
        lam = sum((a * b).sum() for a, b in zip(hv, v)).item()
        v = [t.detach() for t in hv]
    return lam


steps = 1000
losses, sharp = [], []
for step in range(steps):
    if PROBE and step % 200 == 0:
        sharp.append(sharpness())
    idx = torch.randint(0, n, (128,))
    loss = F.mse_loss(net(X[idx]), y[idx])
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    losses.append(loss.item())
    if step % 200 == 0:
        print(f"step {step} mse {np.mean(losses[-50:]):.4f}")

with torch.no_grad():
    r2 = 1 - F.mse_loss(net(X), y).item()
if PROBE:
    # heavy-ball SGD is stable on a quadratic only while lr * lambda_max < 2 (1 + momentum)
    ratio = lr * float(np.median(sharp[1:])) / (2 * (1 + momentum))
    print(f"PROBE heavy_ball_stability_ratio={ratio:.3g}")
tail = losses[-steps // 20:]
print(f"FINAL loss={np.mean(tail):.4f} r2={r2:.4f}")
