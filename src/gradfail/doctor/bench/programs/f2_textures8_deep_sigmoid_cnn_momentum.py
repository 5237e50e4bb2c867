"""Texture classification on noisy 8x8 patches (horizontal / vertical / diagonal stripes, checks).

Model: a plain stack of 10 Conv2d(3x3) layers with sigmoid activations, global average pooling
and a linear head (no normalisation, no skip connections); SGD momentum, batch 64.
Cause: each sigmoid layer multiplies the backward signal by at most 0.25 times a small
default-initialised weight matrix, so the gradient shrinks geometrically towards the input and
the early filters, which must detect orientation, hardly move. FIXED=1 adds an identity
skip connection around each layer (a residual stack of the same depth and activation).
"""
import os
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"


def textures(n):
    ii, jj = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    y = np.random.randint(0, 4, size=n)
    X = np.empty((n, 1, 8, 8), dtype=np.float32)
    for k in range(n):
        period = np.random.choice([2.0, 3.0, 4.0])
        phase = np.random.uniform(0, 2 * math.pi)
        if y[k] == 0:
            img = np.sin(2 * math.pi * ii / period + phase)
        elif y[k] == 1:
            img = np.sin(2 * math.pi * jj / period + phase)
        elif y[k] == 2:
            img = np.sin(2 * math.pi * (ii + jj) / period + phase)
        else:
            img = np.sign(np.sin(math.pi * ii / 2 + phase)) * np.sign(np.sin(math.pi * jj / 2 + phase))
        X[k, 0] = img + 0.5 * np.random.randn(8, 8)
    return torch.from_numpy(X), torch.from_numpy(y).long()


Xtr, ytr = textures(4000)
Xte, yte = textures(1000)

DEPTH = 10


class DeepConvStack(nn.Module):
    def __init__(self, channels=12):
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in range(DEPTH - 1))
        self.fc = nn.Linear(channels, 4)

    def forward(self, x):
        x = self.stem(x)
        for conv in self.convs:
            if FIXED:
                x = x + conv(torch.sigmoid(x))      # identity skip around each layer
            else:
                x = conv(torch.sigmoid(x))
        return self.fc(torch.sigmoid(x).mean(dim=(2, 3)))


model = DeepConvStack()
opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)

steps, bs = 400, 64
losses, ratios = [], []
for step in range(steps):
    idx = torch.randint(0, len(Xtr), (bs,))
    loss = F.cross_entropy(model(Xtr[idx]), ytr[idx])
    opt.zero_grad()
    loss.backward()
    if PROBE and step % 50 == 0:
        first = model.stem.weight.grad.norm().item()
        last = model.convs[-1].weight.grad.norm().item()
        ratios.append(first / last)
    opt.step()
    losses.append(loss.item())
    if step % 200 == 0:
        print(f"step {step:4d}  loss {loss.item():.3f}")

with torch.no_grad():
    acc = (model(Xte).argmax(1) == yte).float().mean().item()
if PROBE:
    print(f"PROBE first_to_last_conv_grad_norm={np.median(ratios):.3g}")
print(f"FINAL loss={np.mean(losses[-steps // 20:]):.4f} test_acc={acc:.3f}")
