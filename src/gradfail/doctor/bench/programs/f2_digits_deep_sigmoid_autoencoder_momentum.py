"""Deep fully-connected autoencoder for 8x8 digits (64-64-48-32-16-8-16-32-48-64-64).

Ten nn.Linear layers with sigmoid hidden activations, linear output, MSE reconstruction loss;
SGD with momentum 0.9 and ExponentialLR, DataLoader batches of 32.
Cause: with default initialisation every sigmoid layer scales the backward signal down
(sigmoid' <= 0.25 times a weight matrix of norm < 1), so gradients shrink geometrically from the
decoder output back to the encoder: the encoder and the bottleneck never learn and the network
only outputs the average digit. FIXED=1 puts a BatchNorm1d before every hidden sigmoid.
"""
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

X = load_digits().data.astype(np.float32) / 16.0
X = X[np.random.permutation(len(X))]
X_train, X_val = torch.from_numpy(X[:1500]), torch.from_numpy(X[1500:])
loader = DataLoader(TensorDataset(X_train), batch_size=32, shuffle=True)

SIZES = [64, 64, 48, 32, 16, 8, 16, 32, 48, 64, 64]

layers = []
for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
    layers.append(nn.Linear(a, b))
    if i < len(SIZES) - 2:
        if FIXED:
            layers.append(nn.BatchNorm1d(b))
        layers.append(nn.Sigmoid())
autoencoder = nn.Sequential(*layers)
linears = [m for m in autoencoder if isinstance(m, nn.Linear)]

opt = torch.optim.SGD(autoencoder.parameters(), lr=0.1, momentum=0.9)
sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)
mse = nn.MSELoss()

history, ratios = [], []
for epoch in range(20):
    for (xb,) in loader:
        loss = mse(autoencoder(xb), xb)
        opt.zero_grad()
        loss.backward()
        if PROBE:
            ratios.append(linears[0].weight.grad.norm().item() / linears[-1].weight.grad.norm().item())
        opt.step()
        history.append(loss.item())
    sched.step()
    if epoch % 5 == 0:
        print(f"epoch {epoch:2d}  recon mse {np.mean(history[-len(loader):]):.4f}")

autoencoder.eval()
with torch.no_grad():
    val_mse = mse(autoencoder(X_val), X_val).item()
    val_r2 = 1 - val_mse / ((X_val - X_train.mean(0)) ** 2).mean().item()

if PROBE:
    print(f"PROBE first_to_last_layer_grad_norm={np.median(ratios):.3g}")
k = max(1, len(history) // 20)
print(f"FINAL loss={np.mean(history[-k:]):.4f} val_r2={val_r2:.3f}")
