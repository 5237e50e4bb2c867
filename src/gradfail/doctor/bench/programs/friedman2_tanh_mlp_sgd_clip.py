"""Impedance regression (sklearn make_friedman2) with a tanh MLP and clipped plain SGD.

Data: 2000 samples, inputs and target standardised. Model: nn.Sequential 4-64-64-1 with
tanh, Huber loss, plain SGD + clip_grad_norm_(1.0), shuffled DataLoader (batch 50), 25 epochs.
Cause of failure: the learning rate (3.0) is far above the stability limit 2/lambda_max of
the loss curvature, so each update overshoots along the sharpest direction and the loss
jumps around at a high level instead of settling (finite throughout).
FIXED=1 lowers the learning rate to 0.1.
"""
import os
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import make_friedman2

torch.manual_seed(7)
np.random.seed(7)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"
probe_gen = torch.Generator().manual_seed(123)  # keeps the probe off the training RNG

X, y = make_friedman2(n_samples=2000, noise=10.0, random_state=7)
X = (X - X.mean(0)) / X.std(0)
y = (y - y.mean()) / y.std()
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
loader = DataLoader(TensorDataset(X, y), batch_size=50, shuffle=True)

net = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
lr = 0.1 if FIXED else 3.0
opt = torch.optim.SGD(net.parameters(), lr=lr)
loss_fn = nn.HuberLoss(delta=1.0)


def top_hessian_eig(model, xs, ys, iters=25):
    params = list(model.parameters())
    g = torch.autograd.grad(loss_fn(model(xs), ys), params, create_graph=True)
    v = [torch.randn(p.shape, generator=probe_gen) for p in params]
    lam = 0.0
    for _ in range(iters):
        n = torch.sqrt(sum((u ** 2).sum() for u in v))
        v = [u / n for u in v]
        hv = torch.autograd.grad(g, params, grad_outputs=v, retain_graph=True)
        lam = sum((a * b).sum() for a, b in zip(hv, v)).item()
        v = [t.detach() for t in hv]
    return lam


losses, sharp = [], []
for epoch in range(25):
    if PROBE and epoch % 5 == 0:  # full-batch sharpness every 5 epochs
        sharp.append(top_hessian_eig(net, X, y))
    for xb, yb in loader:
        opt.zero_grad()
        loss = loss_fn(net(xb), yb)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    if epoch % 5 == 0:
        print(f"epoch {epoch:2d} loss {np.mean(losses[-40:]):.4f}")

with torch.no_grad():
    pred = net(X)
    r2 = 1 - ((pred - y) ** 2).sum().item() / ((y - y.mean()) ** 2).sum().item()
if PROBE:
    # top Hessian eigenvalue along the run (after the first epochs) times the step size
    print(f"PROBE lr_times_sharpness={lr * float(np.median(sharp[1:])):.3g}")
tail = losses[-len(losses) // 20:]
print(f"FINAL loss={np.mean(tail):.4f} r2={r2:.4f}")
