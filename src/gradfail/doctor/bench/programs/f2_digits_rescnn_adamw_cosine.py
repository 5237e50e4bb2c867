"""Handwritten digits (sklearn 8x8) classified by a small residual CNN.

Model: 3x3 conv stem, two residual blocks (conv-BN-ReLU-conv-BN + identity), global average
pooling and a linear classifier. Optimizer: AdamW (lr 3e-3, weight decay 1e-2) with a
CosineAnnealingLR schedule, mini-batches of 32 from a shuffled DataLoader, cross-entropy.
Healthy: pixels scaled to [0, 1], normalisation layers, skip connections, sensible step.
FIXED=1 changes nothing.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(1)
np.random.seed(1)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

digits = load_digits()
X = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
y = torch.tensor(digits.target, dtype=torch.long)
perm = torch.randperm(len(y))
X, y = X[perm], y[perm]
Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]

loader = DataLoader(TensorDataset(Xtr, ytr), batch_size=32, shuffle=True)


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(c)

    def forward(self, x):
        h = F.relu(self.b1(self.c1(x)))
        h = self.b2(self.c2(h))
        return F.relu(x + h)


class ResNetTiny(nn.Module):
    def __init__(self, c=12, n_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.blocks = nn.Sequential(ResBlock(c), ResBlock(c))
        self.fc = nn.Linear(c, n_classes)

    def forward(self, x):
        h = self.blocks(self.stem(x))
        return self.fc(h.mean(dim=(2, 3)))


model = ResNetTiny()
EPOCHS = 8
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS * len(loader))

losses = []
for epoch in range(EPOCHS):
    model.train()
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    if epoch % 3 == 0:
        print(f"epoch {epoch} loss {np.mean(losses[-len(loader):]):.4f}")

model.eval()
with torch.no_grad():
    test_acc = (model(Xte).argmax(1) == yte).float().mean().item()

if PROBE:
    # healthy: held-out accuracy compared with the 10-class chance level
    print(f"PROBE test_acc_over_chance={test_acc / 0.1:.2f}")

tail = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_acc={test_acc:.3f}")
