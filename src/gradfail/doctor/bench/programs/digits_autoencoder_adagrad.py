"""Undercomplete autoencoder (64-48-12-48-64, ELU, custom forward) compressing sklearn's
8x8 digits (centred, scaled pixels) to a 12-d code, trained with Adagrad on mini-batches of
64, MSE reconstruction loss, 800 steps.

Failure: Adagrad's learning rate is 5e-4. Adagrad's steps are about lr / sqrt(t) per
weight, so the whole run moves each weight by only a few hundredths: the reconstruction
error decreases smoothly but crawls and the code stays almost untrained.
FIXED=1 uses lr=5e-2 (x100).
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(14)
np.random.seed(14)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

pix = load_digits().data.astype(np.float32)
np.random.shuffle(pix)
train, test = pix[:1500], pix[1500:]
mean = train.mean(0)
train = torch.from_numpy((train - mean) / 4.0)  # pixels are 0..16: centre, unit-ish scale
test = torch.from_numpy((test - mean) / 4.0)


class AutoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.e1, self.e2 = nn.Linear(64, 48), nn.Linear(48, 12)
        self.d1, self.d2 = nn.Linear(12, 48), nn.Linear(48, 64)

    def encode(self, x):
        return self.e2(F.elu(self.e1(x)))

    def forward(self, x):
        return self.d2(F.elu(self.d1(self.encode(x))))


ae = AutoEncoder()
optimizer = torch.optim.Adagrad(ae.parameters(), lr=5e-2 if FIXED else 5e-4)

STEPS = 800
losses = []
for step in range(STEPS):
    batch = train[torch.randint(0, len(train), (64,))]
    loss = F.mse_loss(ae(batch), batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if step % 200 == 199:
        print(f"steps {step - 199:3d}-{step:3d}  mean recon mse {np.mean(losses[-200:]):.4f}")

with torch.no_grad():
    test_mse = F.mse_loss(ae(test), test).item()
explained = 1 - test_mse / test.var(0).mean().item()

if PROBE:
    # Adagrad's effective per-weight learning rate at the end: lr / sqrt(sum of grad^2)
    eff = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state[p]
            eff.append((group["lr"] / (st["sum"].sqrt() + group["eps"])).flatten())
    print(f"PROBE median_adagrad_effective_lr={torch.cat(eff).median().item():.2e}")

tail = losses[-STEPS // 20:]
print(f"FINAL loss={np.mean(tail):.4f} explained_var={explained:.3f}")
