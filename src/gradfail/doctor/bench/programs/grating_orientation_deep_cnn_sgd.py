"""Orientation of noisy sinusoidal gratings (synthetic 8x8 images, 4 classes).
Model: plain stack of 8 3x3 conv layers (8 channels) with sigmoids, default init, global average
pooling, linear head; SGD + momentum + weight decay, warm-up then cosine lr (LambdaLR), DataLoader.
Cause of failure: each sigmoid layer scales the backward signal by at most 0.25 and the default
weights do not make up for it, so gradients shrink geometrically through the 8 layers; the
early filters hardly learn and the loss stays at chance.
FIXED=1: a BatchNorm2d layer before each sigmoid.
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(11)
np.random.seed(11)
FIXED = os.environ.get("FIXED", "0") == "1"
PROBE = os.environ.get("PROBE", "0") == "1"

S, N = 8, 2000
yy, xx = np.mgrid[0:S, 0:S].astype(np.float32)
labels = np.random.randint(0, 4, size=N)
angles = labels * math.pi / 4 + np.random.uniform(-0.15, 0.15, size=N)
freq = np.random.uniform(0.6, 1.2, size=N)
phase = np.random.uniform(0, 2 * math.pi, size=N)
proj = np.cos(angles)[:, None, None] * xx + np.sin(angles)[:, None, None] * yy
imgs = np.sin(freq[:, None, None] * proj + phase[:, None, None])
imgs = imgs + 0.5 * np.random.randn(N, S, S)
imgs = ((imgs - imgs.mean()) / imgs.std()).astype(np.float32)
X = torch.from_numpy(imgs).unsqueeze(1)
y = torch.from_numpy(labels).long()
train = DataLoader(TensorDataset(X[:1600], y[:1600]), batch_size=32, shuffle=True)
X_te, y_te = X[1600:], y[1600:]


def block(c_in, c_out):
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1)]
    if FIXED:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.Sigmoid())
    return layers


depth, ch = 8, 8
feats = block(1, ch)
for _ in range(depth - 1):
    feats += block(ch, ch)
model = nn.Sequential(*feats, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ch, 4))
convs = [m for m in model if isinstance(m, nn.Conv2d)]

epochs = 10
total = epochs * len(train)
opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=5e-4)
warmup = 50
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: (s + 1) / warmup if s < warmup
    else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))))
crit = nn.CrossEntropyLoss()

losses, ratios = [], []
step = 0
for epoch in range(epochs):
    model.train()
    for xb, yb in train:
        loss = crit(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        if PROBE and step % 40 == 0:
            ratios.append(convs[0].weight.grad.norm().item() / convs[-1].weight.grad.norm().item())
        opt.step()
        sched.step()
        losses.append(loss.item())
        step += 1

model.eval()
with torch.no_grad():
    acc = (model(X_te).argmax(1) == y_te).float().mean().item()
if PROBE:
    print(f"PROBE first_to_last_layer_grad_norm={np.median(ratios):.3g}")
print(f"FINAL loss={np.mean(losses[-max(1, total // 20):]):.4f} test_acc={acc:.3f}")
