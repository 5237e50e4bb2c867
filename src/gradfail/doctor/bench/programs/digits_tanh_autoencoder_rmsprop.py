"""Autoencoder for 8x8 digit images (sklearn digits scaled to [0, 1]): tanh MLP
64-32-8-32-64, RMSprop, MSE reconstruction loss, mini-batches of 64 from a shuffled
DataLoader.

RMSprop is run with lr=0.03.  It divides each gradient by its running RMS, so every
weight moves by about lr per step whatever the curvature; at 0.03 that is far too far for
this network, the weights overshoot and swing back, and the reconstruction loss rises and
falls in waves (with occasional bursts) instead of settling.  FIXED=1 uses lr=0.001.
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

pixels = torch.tensor(load_digits().data, dtype=torch.float32) / 16.0
train_set, test_set = pixels[:1500], pixels[1500:]
loader = DataLoader(TensorDataset(train_set), batch_size=64, shuffle=True, drop_last=True)


class AutoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 8), nn.Tanh())
        self.decoder = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 64))

    def forward(self, x):
        return self.decoder(self.encoder(x))


ae = AutoEncoder()
LR = 0.001 if FIXED else 0.03
optimizer = torch.optim.RMSprop(ae.parameters(), lr=LR)
loss_fn = nn.MSELoss()

EPOCHS = 40  # 23 batches per epoch -> 920 steps
train_curve = []
step_ratios = []
for epoch in range(EPOCHS):
    for (xb,) in loader:
        recon = ae(xb)
        loss = loss_fn(recon, xb)
        optimizer.zero_grad()
        loss.backward()
        if PROBE:
            w_before = torch.cat([q.detach().flatten() for q in ae.parameters()])
        optimizer.step()
        if PROBE:
            w_after = torch.cat([q.detach().flatten() for q in ae.parameters()])
            step_ratios.append(((w_after - w_before).norm() / w_before.norm()).item())
        train_curve.append(loss.item())
    if epoch % 10 == 9:
        print(f"epoch {epoch + 1}: recon mse {np.mean(train_curve[-23:]):.4f}")

if PROBE:
    # how far each RMSprop step moves the weights, relative to their size (median)
    print(f"PROBE median_update_to_weight_ratio={np.median(step_ratios):.3g}")

with torch.no_grad():
    test_mse = loss_fn(ae(test_set), test_set).item()
k = len(train_curve) // 20
print(f"FINAL loss={np.mean(train_curve[-k:]):.4f} test_mse={test_mse:.4f}")
