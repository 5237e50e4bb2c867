"""Handwritten digits (sklearn 8x8) with a small LeakyReLU CNN trained by momentum SGD.

Model: conv3x3(1->8) - LeakyReLU - conv3x3(8->16) - LeakyReLU - maxpool - fc(256->64) -
LeakyReLU - fc(64->10). Optimizer: SGD, momentum 0.9, lr 1.5, gradient-norm clipping at 1.0,
mini-batches of 64 drawn at random, cross-entropy.
Cause: the learning rate is far above the stability limit 2(1+momentum)/lambda_max of the loss
curvature, so every step overshoots along the sharpest directions; clipping keeps the weights
finite, but the loss bounces and climbs instead of settling. FIXED=1 lowers the lr to 0.05.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(0)
np.random.seed(0)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

LR = 0.05 if FIXED else 1.5
MOMENTUM = 0.9

d = load_digits()
X = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
X = (X - X.mean()) / X.std()
y = torch.tensor(d.target, dtype=torch.long)
perm = torch.randperm(len(y))
X, y = X[perm], y[perm]
Xtr, ytr, Xte, yte = X[:1500], y[:1500], X[1500:], y[1500:]

model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.LeakyReLU(0.1),
    nn.Conv2d(8, 16, 3, padding=1), nn.LeakyReLU(0.1),
    nn.MaxPool2d(2), nn.Flatten(),
    nn.Linear(16 * 4 * 4, 64), nn.LeakyReLU(0.1),
    nn.Linear(64, 10),
)
opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)


def top_hessian_eig(xb, yb, iters=20):
    params = list(model.parameters())
    loss = F.cross_entropy(model(xb), yb)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    gen = torch.Generator().manual_seed(123)  # keep the training RNG stream untouched
    v = [torch.randn(p.shape, generator=gen) for p in params]
    lam = 0.0
    for _ in range(iters):
        norm = torch.sqrt(sum((u ** 2).sum() for u in v))
        v = [u / norm for u in v]
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        lam = sum((h * u).sum() for h, u in zip(hv, v)).item()
        v = [h.detach() for h in hv]
    return lam


STEPS = 500
BS = 64
losses = []
sharp = []
for step in range(STEPS):
    if PROBE and step in (20, 100, 250):
        sharp.append(top_hessian_eig(Xtr[:256], ytr[:256]))
    idx = torch.randint(0, len(ytr), (BS,))
    loss = F.cross_entropy(model(Xtr[idx]), ytr[idx])
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    losses.append(loss.item())
    if step % 100 == 0:
        print(f"step {step} loss {np.mean(losses[-20:]):.4f}")

with torch.no_grad():
    test_acc = (model(Xte).argmax(1) == yte).float().mean().item()

if PROBE:
    # lr * lambda_max (top Hessian eigenvalue of the batch loss, by power iteration), averaged
    # over three points of the run; heavy-ball momentum is stable only below 2(1+m) = 3.8
    print(f"PROBE lr_times_sharpness={LR * float(np.mean(sharp)):.2f}")

tail = max(1, STEPS // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_acc={test_acc:.3f}")
