"""Handwritten digits (sklearn 8x8) with a tanh MLP, pixels rescaled to 0-255 like an image file.

Model: nn.Sequential 64-64-10 with tanh, cross-entropy, momentum SGD over a shuffled
DataLoader (batch 32), 12 epochs.
Cause of failure: the pixel intensities are fed raw (0..255, mean ~80) instead of being
standardised, so the first layer's pre-activations are in the hundreds, every tanh unit
sits in its flat tail and the first layer barely learns; accuracy stays poor.
FIXED=1 standardises each pixel (zero mean, unit variance) before training.
"""
import os
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

digits = load_digits()
pixels = digits.data * (255.0 / 16.0)           # 8-bit grey levels
labels = digits.target
perm = np.random.permutation(len(labels))
train_idx, test_idx = perm[:1400], perm[1400:]
if FIXED:
    mu = pixels[train_idx].mean(0)
    sd = pixels[train_idx].std(0) + 1e-6
    pixels = (pixels - mu) / sd

Xtr = torch.tensor(pixels[train_idx], dtype=torch.float32)
ytr = torch.tensor(labels[train_idx])
Xte = torch.tensor(pixels[test_idx], dtype=torch.float32)
yte = torch.tensor(labels[test_idx])
train_loader = DataLoader(TensorDataset(Xtr, ytr), batch_size=32, shuffle=True)

net = nn.Sequential(
    nn.Linear(64, 64), nn.Tanh(),
    nn.Linear(64, 10),
)
optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
criterion = nn.CrossEntropyLoss()

losses = []
for epoch in range(12):
    for xb, yb in train_loader:
        optimizer.zero_grad()
        loss = criterion(net(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    print(f"epoch {epoch:2d}  loss {np.mean(losses[-44:]):.4f}")

with torch.no_grad():
    test_acc = (net(Xte).argmax(1) == yte).float().mean().item()
    if PROBE:
        h = torch.tanh(net[0](Xtr))
        saturated = (h.abs() > 0.99).float().mean().item()
        print(f"PROBE tanh_saturated_fraction={saturated:.3f}")

tail = losses[-max(1, len(losses) // 20):]
print(f"FINAL loss={np.mean(tail):.4f} test_acc={test_acc:.4f}")
