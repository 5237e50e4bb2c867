"""House-price regression on synthetic listings with raw-unit features.

Features: living area (500-4000 sq ft), lot (2k-20k sq ft), year built (1900-2020), beds,
baths, distance to centre (km), garages; target: price in $100k. Model: 7-64-64-1 ReLU MLP
(nn.Sequential), Huber loss, RMSprop + StepLR, DataLoader batches of 64, 30 epochs.
Cause of failure: features fed in raw units; the large columns make the first-layer
pre-activations thousands wide while the small informative ones barely register, so
training stalls at a poor fit. FIXED=1 standardises each feature (training mean/std).
"""
import os
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(4)
np.random.seed(4)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

n = 3000
area = np.random.uniform(500, 4000, n)
lot = np.random.uniform(2000, 20000, n)
year = np.random.randint(1900, 2021, n).astype(float)
beds = np.clip(np.round(area / 700 + np.random.randn(n) * 0.7), 1, 6)
baths = np.clip(np.round(beds * 0.6 + np.random.randn(n) * 0.5), 1, 4)
dist = np.random.exponential(8.0, n).clip(0.5, 30)
garage = np.random.randint(0, 4, n).astype(float)
price = (0.9 + area / 1000 * 1.1 + np.sqrt(lot) / 100 * 0.4 + 0.6 * baths + 0.25 * garage
         + 1.5 * np.exp(-dist / 5) + 0.8 * ((year - 1960) / 60) ** 2
         + 0.2 * np.random.randn(n))
feats = np.stack([area, lot, year, beds, baths, dist, garage], 1)

split = 2400
if FIXED:
    mu, sd = feats[:split].mean(0), feats[:split].std(0)
    feats = (feats - mu) / sd
X = torch.tensor(feats, dtype=torch.float32)
y = torch.tensor(price, dtype=torch.float32).unsqueeze(1)
loader = DataLoader(TensorDataset(X[:split], y[:split]), batch_size=64, shuffle=True)

model = nn.Sequential(nn.Linear(7, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
loss_fn = nn.SmoothL1Loss()

losses = []
for epoch in range(30):
    for xb, yb in loader:
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sched.step()
    if epoch % 5 == 0:
        print(f"epoch {epoch:2d} huber {np.mean(losses[-38:]):.4f}")

with torch.no_grad():
    pred = model(X[split:])
    yt = y[split:]
    r2 = 1 - ((pred - yt) ** 2).sum().item() / ((yt - yt.mean()) ** 2).sum().item()
    if PROBE:
        pre = model[0](X[:split])
        print(f"PROBE first_layer_preact_std={pre.std().item():.3g}")
tail = losses[-len(losses) // 20:]
print(f"FINAL loss={np.mean(tail):.4f} test_r2={r2:.4f}")
