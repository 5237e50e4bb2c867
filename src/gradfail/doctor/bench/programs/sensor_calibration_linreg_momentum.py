"""Sensor calibration as linear regression (sklearn make_regression, 10 standardised
inputs, noisy target), nn.Linear, mini-batch SGD (batch 32, lr 0.025) with momentum 0.99,
MSE loss.

With momentum 0.99 the heavy-ball iteration is strongly underdamped: the parameters keep
sailing past the minimum and swing back, and the mini-batch noise keeps re-exciting those
swings, so the loss rises and falls in slow waves of tens of steps for the whole run
instead of settling at the noise floor.  FIXED=1 uses momentum 0.9.
"""
import os
import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import make_regression

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

Xn, yn = make_regression(n_samples=2500, n_features=10, n_informative=10, noise=20.0,
                         random_state=0)
Xn = (Xn - Xn.mean(0)) / Xn.std(0)
yn = (yn - yn.mean()) / yn.std()
X = torch.tensor(Xn[:2000], dtype=torch.float32)
Y = torch.tensor(yn[:2000], dtype=torch.float32).unsqueeze(1)
Xv = torch.tensor(Xn[2000:], dtype=torch.float32)
Yv = torch.tensor(yn[2000:], dtype=torch.float32).unsqueeze(1)

model = nn.Linear(10, 1)
MOMENTUM = 0.9 if FIXED else 0.99
optimizer = torch.optim.SGD(model.parameters(), lr=0.025, momentum=MOMENTUM)
criterion = nn.MSELoss()

STEPS, BATCH = 1000, 32
batch_losses, full_losses = [], []
for step in range(STEPS):
    idx = torch.randint(0, len(X), (BATCH,))
    loss = criterion(model(X[idx]), Y[idx])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    batch_losses.append(loss.item())
    if PROBE:
        with torch.no_grad():
            full_losses.append(criterion(model(X), Y).item())
    if step % 200 == 0:
        print(f"step {step:4d}  batch mse {loss.item():.4f}")

if PROBE:
    # size of the waves of the full-data loss over the second half of training:
    # (peak - trough) / trough of its 10-step moving average
    second = np.array(full_losses[STEPS // 2:])
    smooth = np.convolve(second, np.ones(10) / 10, mode="valid")
    print(f"PROBE loss_wave_peak_to_trough={(smooth.max() - smooth.min()) / smooth.min():.3g}")

with torch.no_grad():
    r2 = 1 - criterion(model(Xv), Yv).item() / Yv.var().item()
k = STEPS // 20
print(f"FINAL loss={np.mean(batch_losses[-k:]):.4f} val_r2={r2:.3f}")
