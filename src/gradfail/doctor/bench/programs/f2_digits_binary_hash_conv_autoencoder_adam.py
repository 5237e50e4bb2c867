"""Semantic hashing of 8x8 digits: a small convolutional autoencoder with a 16-bit binary code.

Conv2d encoder -> 16 real logits -> sign() -> 16 bits -> MLP decoder -> 64 pixels; MSE loss,
Adam with a cosine schedule, mini-batches from a DataLoader.
The code is binarised with torch.sign, whose derivative is zero everywhere, so no gradient
reaches the encoder: it stays at its random initialisation and only the decoder learns
(from random bits). FIXED=1 binarises with a straight-through estimator instead.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

digits = load_digits()
X = torch.tensor(digits.data / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
perm = torch.randperm(len(X))
X = X[perm]
X_train, X_test = X[:1500], X[1500:]
loader = DataLoader(TensorDataset(X_train), batch_size=50, shuffle=True)

N_BITS = 16


def binarize(z):
    if FIXED:
        # straight-through: forward is sign(z), backward is the identity
        return z + (torch.sign(z) - z).detach()
    return torch.sign(z)


class HashAutoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.to_code = nn.Linear(16 * 4 * 4, N_BITS)
        self.dec1 = nn.Linear(N_BITS, 128)
        self.dec2 = nn.Linear(128, 64)

    def encode(self, x):
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(h))
        return self.to_code(h.flatten(1))

    def forward(self, x):
        bits = binarize(self.encode(x))
        h = F.relu(self.dec1(bits))
        return torch.sigmoid(self.dec2(h)).view(-1, 1, 8, 8)


model = HashAutoencoder()
epochs = 25
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(loader))

encoder_params = list(model.conv1.parameters()) + list(model.conv2.parameters()) + list(model.to_code.parameters())
decoder_params = list(model.dec1.parameters()) + list(model.dec2.parameters())

losses = []
enc_norms, dec_norms = [], []
for epoch in range(epochs):
    for (xb,) in loader:
        recon = model(xb)
        loss = F.mse_loss(recon, xb)
        opt.zero_grad()
        loss.backward()
        if PROBE:
            g_enc = sum(float(p.grad.norm() ** 2) for p in encoder_params if p.grad is not None) ** 0.5
            g_dec = sum(float(p.grad.norm() ** 2) for p in decoder_params if p.grad is not None) ** 0.5
            enc_norms.append(g_enc)
            dec_norms.append(g_dec)
        opt.step()
        sched.step()
        losses.append(loss.item())
    if epoch % 8 == 0:
        print(f"epoch {epoch:3d} loss {np.mean(losses[-len(loader):]):.4f}")

model.eval()
with torch.no_grad():
    mse = F.mse_loss(model(X_test), X_test).item()
    r2 = 1.0 - mse / float(((X_test - X_train.mean(0)) ** 2).mean())

if PROBE:
    ratio = np.mean(enc_norms) / (np.mean(dec_norms) + 1e-12)
    print(f"PROBE encoder_to_decoder_grad_norm_ratio={ratio:.3g}")

k = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_r2={r2:.3f}")
