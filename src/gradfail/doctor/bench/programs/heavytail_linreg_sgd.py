"""Linear regression (nn.Linear, 20 features) on targets with heavy-tailed (Student-t,
2.2 degrees of freedom) measurement noise, plain SGD with an MSE loss, 2000 steps.

Failure: the training loop feeds one sample per step. Each single-sample gradient is
dominated by the heavy-tailed noise of its target (occasional huge residuals), so the
weights wander around the solution and the fit on clean data stays poor.
FIXED=1 uses mini-batches of 256 samples instead of 1 (same number of steps, same
learning rate), which averages the noise out of each gradient.
"""
import os

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(5)
np.random.seed(5)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

D = 20
N = 40000
w_true = np.random.randn(D).astype(np.float32)
X = np.random.randn(N, D).astype(np.float32)
noise = 3.0 * np.random.standard_t(2.2, size=N).astype(np.float32)
y = X @ w_true + noise

X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
X_clean = torch.randn(4000, D)
y_clean = X_clean @ torch.from_numpy(w_true)

BATCH = 256 if FIXED else 1
STEPS = 2000
LR = 0.01

model = nn.Linear(D, 1)
opt = torch.optim.SGD(model.parameters(), lr=LR)
loss_fn = nn.MSELoss()


def gradient_snr(batch_size, n=20000):
    """||E g||^2 / trace Cov(g_batch), from per-sample gradients of the linear model."""
    with torch.no_grad():
        idx = torch.randint(0, N, (n,), generator=torch.Generator().manual_seed(9))
        xb, yb = X_t[idx], y_t[idx]
        resid = (model(xb).squeeze(1) - yb)  # d(MSE)/d(pred) = 2 * resid
        per_sample = torch.cat([2 * resid[:, None] * xb, 2 * resid[:, None]], dim=1)
        mean = per_sample.mean(0)
        var = per_sample.var(0).sum()
        return (mean.pow(2).sum() / (var / batch_size)).item()


if PROBE:
    snr_start = gradient_snr(BATCH)

losses = []
for step in range(STEPS):
    idx = torch.randint(0, N, (BATCH,))
    pred = model(X_t[idx]).squeeze(1)
    loss = loss_fn(pred, y_t[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step % 500 == 0:
        print(f"step {step:5d}  loss {np.mean(losses[-100:]):.3f}")

with torch.no_grad():
    resid = model(X_clean).squeeze(1) - y_clean
    r2 = 1 - resid.pow(2).mean() / y_clean.var()

if PROBE:
    # signal-to-noise ratio of the mini-batch gradient at the starting weights
    print(f"PROBE grad_snr_at_init={snr_start:.3g}")

tail = losses[-STEPS // 20:]
print(f"FINAL loss={np.mean(tail):.3f} r2={r2.item():.3f}")
