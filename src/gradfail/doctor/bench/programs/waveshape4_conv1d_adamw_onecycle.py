"""Waveform-shape classification (sine / square / sawtooth / triangle) with a 1-D CNN.

Data: 3000 synthetic signals of length 96 with random frequency, phase, amplitude, offset
and additive noise; 2400 train / 600 test. Model: Conv1d(1,16,7)-BatchNorm-ReLU-MaxPool-
Conv1d(16,32,5)-BatchNorm-ReLU-global average pool-Linear(32,4); cross-entropy;
AdamW (weight decay 1e-2) with a OneCycleLR schedule, DataLoader batches of 64, 12 epochs.
Healthy: loss falls quickly to near zero and test accuracy is high.
FIXED=1 changes nothing.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(19)
np.random.seed(19)
FIXED = os.environ.get("FIXED") == "1"   # healthy: no remedy to apply
PROBE = os.environ.get("PROBE") == "1"

n, L = 3000, 96
t = np.arange(L) / L
f = np.random.uniform(2, 6, (n, 1))
ph = np.random.uniform(0, 1, (n, 1))
cyc = (f * t + ph) % 1.0
kind = np.random.randint(0, 4, n)
waves = np.stack([
    np.sin(2 * np.pi * cyc),
    np.sign(np.sin(2 * np.pi * cyc)),
    2 * cyc - 1,
    4 * np.abs(cyc - 0.5) - 1,
])                                                        # (4, n, L)
sig = waves[kind, np.arange(n)]
sig = sig * np.random.uniform(0.5, 2.0, (n, 1)) + np.random.uniform(-1, 1, (n, 1))
sig = sig + 0.15 * np.random.randn(n, L)
X = torch.tensor(sig, dtype=torch.float32).unsqueeze(1)
y = torch.tensor(kind)
train = DataLoader(TensorDataset(X[:2400], y[:2400]), batch_size=64, shuffle=True)

model = nn.Sequential(
    nn.Conv1d(1, 16, 7, padding=3), nn.BatchNorm1d(16), nn.ReLU(), nn.MaxPool1d(2),
    nn.Conv1d(16, 32, 5, padding=2), nn.BatchNorm1d(32), nn.ReLU(),
    nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(32, 4),
)
epochs = 12
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, epochs=epochs,
                                            steps_per_epoch=len(train))

losses = []
for epoch in range(epochs):
    model.train()
    for xb, yb in train:
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    if epoch % 3 == 0:
        print(f"epoch {epoch:2d} loss {np.mean(losses[-38:]):.4f}")

model.eval()
with torch.no_grad():
    test_acc = (model(X[2400:]).argmax(1) == y[2400:]).float().mean().item()
if PROBE:
    print(f"PROBE test_acc_over_chance={test_acc / 0.25:.3g}")
tail = losses[-len(losses) // 20:]
print(f"FINAL loss={np.mean(tail):.4f} test_acc={test_acc:.4f}")
