"""Dense autoencoder for sklearn digits (64 pixels scaled to [0, 1]):
encoder 64-48-16 and decoder 16-48-64 with ReLU hidden layers and a sigmoid
output, MSE reconstruction loss, Adam lr 3e-3, batches of 64 (manual shuffling),
evaluated by the variance explained on held-out images.
Healthy: the reconstruction error falls well below the mean-image baseline;
FIXED=1 changes nothing.
"""
import os
import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(8)
np.random.seed(8)

pixels = load_digits().data.astype(np.float32) / 16.0
rng = np.random.default_rng(8)
rng.shuffle(pixels)
train = torch.from_numpy(pixels[:1500])
held_out = torch.from_numpy(pixels[1500:])


class AutoEncoder(nn.Module):
    def __init__(self, code=16):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, code))
        self.decoder = nn.Sequential(nn.Linear(code, 48), nn.ReLU(),
                                     nn.Linear(48, 64), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


ae = AutoEncoder()
optimizer = torch.optim.Adam(ae.parameters(), lr=3e-3)
mse = nn.MSELoss()

losses = []
for epoch in range(20):
    idx = torch.randperm(len(train))
    for i in range(0, len(idx), 64):
        batch = train[idx[i:i + 64]]
        recon = ae(batch)
        loss = mse(recon, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    if epoch % 5 == 4:
        print(f"epoch {epoch + 1:2d} recon mse {np.mean(losses[-24:]):.5f}")

with torch.no_grad():
    err = mse(ae(held_out), held_out).item()
    baseline = mse(train.mean(0, keepdim=True).expand_as(held_out), held_out).item()
r2 = 1.0 - err / baseline
if os.environ.get("PROBE") == "1":
    print(f"PROBE recon_mse_over_mean_image_mse={err / baseline:.3f}")
tail = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.5f} r2={r2:.3f}")
