"""System identification: a multi-channel 1-D convolution learns an unknown FIR response.

Data: 200 recordings of 3 white-noise input channels; output = sum of unknown 9-tap FIR
responses + noise. Model: nn.Conv1d(3, 1, 9), MSE, plain SGD + clip_grad_value_(0.5),
DataLoader batches of 20, 60 epochs. Cause of failure: the learning rate (1.5) is above
2/lambda_max of this well-conditioned quadratic loss, so each step overshoots the minimum
along the sharpest direction and the loss bounces above its starting level (finite: the
clipping caps each step). FIXED=1 lowers the learning rate to 0.5.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(16)
np.random.seed(16)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

n_rec, length, taps = 200, 128, 9
u = torch.randn(n_rec, 3, length)
true_fir = torch.randn(1, 3, taps) * torch.exp(-torch.arange(taps) / 3.0)
with torch.no_grad():
    out = F.conv1d(u, true_fir) + 0.1 * torch.randn(n_rec, 1, length - taps + 1)
    out = (out - out.mean()) / out.std()
loader = DataLoader(TensorDataset(u[:160], out[:160]), batch_size=20, shuffle=True)

fir = nn.Conv1d(3, 1, taps)
lr = 0.5 if FIXED else 1.5
opt = torch.optim.SGD(fir.parameters(), lr=lr)

losses = []
for epoch in range(60):
    for xb, yb in loader:
        opt.zero_grad()
        loss = F.mse_loss(fir(xb), yb)
        loss.backward()
        torch.nn.utils.clip_grad_value_(fir.parameters(), 0.5)
        opt.step()
        losses.append(loss.item())
    if epoch % 15 == 0:
        print(f"epoch {epoch:2d} mse {np.mean(losses[-8:]):.4f}")

with torch.no_grad():
    test_mse = F.mse_loss(fir(u[160:]), out[160:]).item()
    r2 = 1 - test_mse / out[160:].var().item()
if PROBE:
    # the loss is quadratic in (taps, bias): Hessian = 2 E[w w^T] over input windows
    win = u[:160].unfold(2, taps, 1).permute(0, 2, 1, 3).reshape(-1, 3 * taps).double()
    win = torch.cat([win, torch.ones(len(win), 1, dtype=torch.float64)], 1)
    lam = torch.linalg.eigvalsh(2 * win.T @ win / len(win)).max().item()
    print(f"PROBE lr_times_sharpness={lr * lam:.3g}")
tail = losses[-len(losses) // 20:]
print(f"FINAL loss={np.mean(tail):.4f} test_r2={r2:.4f}")
