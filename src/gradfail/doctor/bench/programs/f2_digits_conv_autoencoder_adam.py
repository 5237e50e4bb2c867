"""Convolutional autoencoder on the 8x8 scikit-learn digits: an encoder of two
Conv2d + MaxPool stages to a 16-d code, a ConvTranspose2d decoder; MSE
reconstruction loss, Adam, mini-batches of 64 from a shuffled DataLoader.
Cause of failure: the learning rate was typed as 3e-5, about a hundred times
below what Adam tolerates here, so every step moves the weights by a tiny
amount and the reconstruction error falls smoothly but far too slowly.
FIXED=1: lr=3e-3.
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
images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)  # (N,1,8,8) in [0,1]
perm = torch.randperm(len(images))
train_imgs, test_imgs = images[perm[:1500]], images[perm[1500:]]
loader = DataLoader(TensorDataset(train_imgs), batch_size=64, shuffle=True, drop_last=True)


class ConvAE(nn.Module):
    def __init__(self, code=16):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),       # 8x4x4
            nn.Conv2d(8, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),      # 32x2x2
            nn.Flatten(), nn.Linear(128, code))
        self.decoder_fc = nn.Linear(code, 128)
        self.decoder = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(32, 8, 2, stride=2), nn.ReLU(),              # 8x4x4
            nn.ConvTranspose2d(8, 1, 2, stride=2), nn.Sigmoid())            # 1x8x8

    def forward(self, x):
        z = self.encoder(x)
        return self.decoder(self.decoder_fc(z).view(-1, 32, 2, 2))


model = ConvAE()
lr = 3e-3 if FIXED else 3e-5
opt = torch.optim.Adam(model.parameters(), lr=lr)
loss_fn = nn.MSELoss()
epochs = 30

losses, rel_updates = [], []
for epoch in range(epochs):
    for (xb,) in loader:
        if PROBE:
            before = torch.cat([p.detach().flatten() for p in model.parameters()])
        loss = loss_fn(model(xb), xb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if PROBE:
            after = torch.cat([p.detach().flatten() for p in model.parameters()])
            rel_updates.append(((after - before).norm() / before.norm()).item())
    if epoch % 5 == 4:
        print(f"epoch {epoch + 1} recon_mse {np.mean(losses[-len(loader):]):.5f}")

with torch.no_grad():
    test_mse = loss_fn(model(test_imgs), test_imgs).item()
    baseline = ((test_imgs - train_imgs.mean(0)) ** 2).mean().item()   # predict the mean image
r2 = 1 - test_mse / baseline
if PROBE:
    print(f"PROBE relative_update_per_step={np.mean(rel_updates):.2e}")
k = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-k:]):.5f} test_r2={r2:.4f}")
