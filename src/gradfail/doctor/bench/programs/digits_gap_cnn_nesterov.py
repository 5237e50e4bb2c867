"""Digits (sklearn 8x8) classification with a small all-convolutional network.
Model: Conv(1->16)-ReLU-Conv(16->16)-ReLU, global average pooling, linear head; first conv
biases initialised to -1.9 ("only respond to strong edges"). SGD + Nesterov, StepLR, DataLoader.
Cause of failure: for most first-layer filters the response never exceeds 1.9 on any patch of
any image, so those channels output zero everywhere, get zero gradient and stay dead; the few
live channels fire on almost nothing and the net underfits.
FIXED=1: the first conv layer's biases are initialised to zero.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(18)
np.random.seed(18)
FIXED = os.environ.get("FIXED", "0") == "1"
PROBE = os.environ.get("PROBE", "0") == "1"

digits = load_digits()
imgs = digits.images.astype(np.float32)
imgs = (imgs - imgs.mean()) / imgs.std()
X = torch.from_numpy(imgs)[:, None]
y = torch.from_numpy(digits.target)
perm = torch.randperm(len(X))
X, y = X[perm], y[perm]
train_set = TensorDataset(X[:1400], y[:1400])
X_val, y_val = X[1400:], y[1400:]
loader = DataLoader(train_set, batch_size=32, shuffle=True, drop_last=True)


class AllConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        )
        self.classifier = nn.Linear(16, 10)
        nn.init.constant_(self.features[0].bias, 0.0 if FIXED else -1.9)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


net = AllConv()
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.3)

losses = []
for epoch in range(14):
    for xb, yb in loader:
        loss = F.cross_entropy(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sched.step()

with torch.no_grad():
    acc = (net(X_val).argmax(1) == y_val).float().mean().item()
    if PROBE:
        a1 = net.features[1](net.features[0](X[:1400]))
        dead = (a1.amax(dim=(0, 2, 3)) == 0).float().mean().item()
        print(f"PROBE dead_channel_fraction={dead:.2f}")
print(f"FINAL loss={np.mean(losses[-len(losses) // 20:]):.4f} test_acc={acc:.3f}")
