"""Handwritten digits (sklearn 8x8) compressed by a convolutional autoencoder.

Model: encoder conv(1->8, stride 2) - ReLU - conv(8->16, stride 2) - ReLU - fc to a 12-d code;
decoder fc - ReLU - two transposed convs back to 8x8. Loss: MSE reconstruction.
Optimizer: SGD with momentum 0.9, lr 2.0, mini-batches of 64, 600 steps.
Cause: the learning rate is ten times what the reconstruction loss tolerates:
the first updates overshoot, the weights and outputs grow geometrically and overflow to inf and
then NaN within the first hundred steps; training keeps running on NaN weights.
FIXED=1 lowers the lr to 0.2.
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

LR = 0.2 if FIXED else 2.0

d = load_digits()
X = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
perm = torch.randperm(len(X))
X = X[perm]
Xtr, Xte = X[:1500], X[1500:]


class ConvAutoencoder(nn.Module):
    def __init__(self, code=12):
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),   # 4x4
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),  # 2x2
            nn.Flatten(), nn.Linear(16 * 2 * 2, code),
        )
        self.dec = nn.Sequential(
            nn.Linear(code, 16 * 2 * 2), nn.ReLU(), nn.Unflatten(1, (16, 2, 2)),
            nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1), nn.ReLU(),  # 4x4
            nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1),              # 8x8
        )

    def forward(self, x):
        return self.dec(self.enc(x))


model = ConvAutoencoder()
opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)

STEPS = 600
BS = 64
losses = []
grad_norms = []
for step in range(STEPS):
    idx = torch.randint(0, len(Xtr), (BS,))
    xb = Xtr[idx]
    loss = F.mse_loss(model(xb), xb)
    opt.zero_grad()
    loss.backward()
    if PROBE:
        grad_norms.append(torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters())).item())
    opt.step()
    losses.append(loss.item())
    if step % 200 == 0:
        print(f"step {step} loss {loss.item():.4f}")

with torch.no_grad():
    rec = model(Xte)
    test_mse = F.mse_loss(rec, Xte).item()
    r2 = 1 - test_mse / Xte.var().item()

if PROBE:
    # growth of the gradient norm from the first step to its largest finite value, and the
    # step where the loss first went non-finite (STEPS if never)
    g = np.array(grad_norms)
    finite = g[np.isfinite(g)]
    bad = np.where(~np.isfinite(np.array(losses)))[0]
    first = int(bad[0]) if len(bad) else STEPS
    print(f"PROBE grad_norm_growth={finite.max() / finite[0]:.3g} first_nonfinite_loss_step={first}")

tail = max(1, STEPS // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} recon_r2={r2:.3f}")
