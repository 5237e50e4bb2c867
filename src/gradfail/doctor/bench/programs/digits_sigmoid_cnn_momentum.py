"""Digits (sklearn 8x8) classification with a small sigmoid CNN.
Model: two 3x3 conv layers with torch.sigmoid in a custom forward, linear classifier; conv
biases initialised to +3 ("start units switched on"); SGD + momentum, DataLoader, cross-entropy.
Cause of failure: the large bias pushes the conv pre-activations into the sigmoid's upper tail
(outputs ~0.95-1, derivatives mostly < 0.05): the features are nearly constant and the
filters get almost no gradient. Pixels are standardised.
FIXED=1: a BatchNorm2d layer normalises each conv output before its sigmoid.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(5)
np.random.seed(5)
FIXED = os.environ.get("FIXED", "0") == "1"
PROBE = os.environ.get("PROBE", "0") == "1"

data = load_digits()
X = data.images.astype(np.float32)
X = (X - X.mean()) / X.std()
y = data.target.astype(np.int64)
idx = np.random.permutation(len(X))
tr, te = idx[:1400], idx[1400:]
X_t = torch.from_numpy(X).unsqueeze(1)
y_t = torch.from_numpy(y)
train_loader = DataLoader(TensorDataset(X_t[tr], y_t[tr]), batch_size=32, shuffle=True)


class SigmoidCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.norm1 = nn.BatchNorm2d(16) if FIXED else nn.Identity()
        self.norm2 = nn.BatchNorm2d(32) if FIXED else nn.Identity()
        self.fc = nn.Linear(32 * 4 * 4, 10)
        nn.init.constant_(self.conv1.bias, 3.0)
        nn.init.constant_(self.conv2.bias, 3.0)

    def features(self, x):
        a1 = torch.sigmoid(self.norm1(self.conv1(x)))
        a2 = torch.sigmoid(self.norm2(self.conv2(a1)))
        return a1, a2

    def forward(self, x):
        _, a2 = self.features(x)
        return self.fc(F.max_pool2d(a2, 2).flatten(1))


model = SigmoidCNN()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

losses = []
for epoch in range(16):
    model.train()
    for xb, yb in train_loader:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())

model.eval()
with torch.no_grad():
    acc = (model(X_t[te]).argmax(1) == y_t[te]).float().mean().item()
    if PROBE:
        a1, a2 = model.features(X_t[tr])
        d = torch.cat([(a1 * (1 - a1)).flatten(), (a2 * (1 - a2)).flatten()])
        print(f"PROBE mean_sigmoid_derivative={d.mean().item():.3g}")
print(f"FINAL loss={np.mean(losses[-len(losses) // 20:]):.4f} test_acc={acc:.3f}")
