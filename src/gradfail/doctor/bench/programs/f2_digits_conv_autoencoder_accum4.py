"""Convolutional autoencoder for 8x8 digits (healthy run).

Encoder: Conv2d(1,16,3,s1)-GELU-Conv2d(16,32,3,s2)-GELU-Linear(32*4*4, 12); decoder mirrors it
with Linear + ConvTranspose2d. Loss: Huber (SmoothL1) on standardised pixels; Adam lr 2e-3
with CosineAnnealingLR. Memory-friendly training: micro-batches of 16 from a DataLoader, and
the gradient is deliberately accumulated over 4 micro-batches (loss / 4) before each
optimizer step, with zero_grad() right after every step: effective batch 64, 330 steps.
Healthy: FIXED=1 changes nothing.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(8)
np.random.seed(8)
PROBE = os.environ.get("PROBE") == "1"

d = load_digits()
X = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1)
X = (X - X.mean()) / X.std()
perm = torch.randperm(len(X))
x_tr, x_te = X[perm[:1500]], X[perm[1500:]]
loader = DataLoader(TensorDataset(x_tr), batch_size=16, shuffle=True, drop_last=True)


class ConvAE(nn.Module):
    def __init__(self, code=12):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.GELU(),
                                 nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.GELU(),
                                 nn.Flatten(), nn.Linear(32 * 4 * 4, code))
        self.dec_fc = nn.Linear(code, 32 * 4 * 4)
        self.dec = nn.Sequential(nn.GELU(),
                                 nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.GELU(),
                                 nn.Conv2d(16, 1, 3, padding=1))

    def forward(self, x):
        z = self.enc(x)
        return self.dec(self.dec_fc(z).view(-1, 32, 4, 4))


model = ConvAE()
ACCUM = 4
n_updates = 330
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_updates)

losses, updates, micro = [], 0, 0
running = 0.0
opt.zero_grad()
while updates < n_updates:
    for (xb,) in loader:
        loss = F.smooth_l1_loss(model(xb), xb)
        (loss / ACCUM).backward()
        running += loss.item() / ACCUM
        micro += 1
        if micro % ACCUM == 0:
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(running)
            running = 0.0
            updates += 1
            if updates % 110 == 0:
                print(f"update {updates} huber={np.mean(losses[-110:]):.4f}")
            if updates == n_updates:
                break

with torch.no_grad():
    recon = model(x_te)
    r2 = 1 - ((recon - x_te) ** 2).sum().item() / ((x_te - x_tr.mean(0)) ** 2).sum().item()
if PROBE:
    # reconstruction error relative to always predicting the mean training image
    with torch.no_grad():
        mse = F.mse_loss(recon, x_te).item()
        base = F.mse_loss(x_tr.mean(0, keepdim=True).expand_as(x_te), x_te).item()
    print(f"PROBE recon_mse_over_mean_image_mse={mse / base:.3g}")
tail = max(1, n_updates // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_r2={r2:.3f}")
