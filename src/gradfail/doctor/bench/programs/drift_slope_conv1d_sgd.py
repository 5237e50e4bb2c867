"""Rate-of-change estimation on drifting sensor traces with a 1-D convolution.

Data: near-random-walk AR(1) traces, lightly smoothed, standardised; target = their local
slope (central difference). Model: one nn.Conv1d(1, 1, 15) FIR layer, MSE, full-batch SGD.
Cause of failure: consecutive samples are almost identical, so the loss curvature in filter
space (the window autocorrelation) spans 5+ orders of magnitude; the difference filter lies
along the flat directions and SGD creeps towards it after a fast start.
FIXED=1 trains with L-BFGS instead of SGD.
"""
import os
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(3)
np.random.seed(3)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

n_traces, length, taps, rho = 64, 96, 15, 0.998
shocks = np.random.randn(n_traces, length + 300)
drift = np.zeros_like(shocks)
for t in range(1, drift.shape[1]):
    drift[:, t] = rho * drift[:, t - 1] + shocks[:, t]
drift = drift[:, 298:]
drift = (drift[:, :-2] + drift[:, 1:-1] + drift[:, 2:]) / 3.0     # sensor's 3-tap smoothing
drift = (drift - drift.mean()) / drift.std()
x = torch.tensor(drift, dtype=torch.float32).unsqueeze(1)          # (64, 1, 96)

half = taps // 2
with torch.no_grad():
    slope = (x[..., 2:] - x[..., :-2]) / 2.0                        # central difference
    target = slope[..., half - 1:length - half - 1]                  # align with conv output
    target = (target - target.mean()) / target.std()

model = nn.Conv1d(1, 1, kernel_size=taps)
loss_fn = nn.MSELoss()
if FIXED:
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=5, history_size=10,
                            line_search_fn="strong_wolfe")
else:
    opt = torch.optim.SGD(model.parameters(), lr=0.03)

if PROBE:
    w_init = torch.cat([model.weight.detach().flatten(), model.bias.detach()]).double()

def closure():
    opt.zero_grad()
    loss = loss_fn(model(x), target)
    loss.backward()
    return loss

steps = 800
losses = []
for step in range(steps):
    loss = opt.step(closure)
    losses.append(loss.item())
    if step % 200 == 0:
        print(f"step {step} loss {loss.item():.4f}")

with torch.no_grad():
    resid = model(x) - target
    r2 = 1 - resid.pow(2).sum().item() / (target - target.mean()).pow(2).sum().item()

if PROBE:
    # Hessian of the MSE in (filter taps, bias) space and the least-squares filter;
    # how much of the starting error along the flattest curvature directions is left?
    windows = x.squeeze(1).unfold(1, taps, 1).reshape(-1, taps).double()
    windows = torch.cat([windows, torch.ones(len(windows), 1, dtype=torch.float64)], 1)
    hess = 2 * windows.T @ windows / len(windows)
    ev, vecs = torch.linalg.eigh(hess)
    w_star = torch.linalg.lstsq(windows, target.reshape(-1, 1).double()).solution.flatten()
    w_now = torch.cat([model.weight.detach().flatten(), model.bias.detach()]).double()
    flat = vecs[:, ev < ev.max() * 1e-3]
    left = (flat.T @ (w_now - w_star)).norm() / (flat.T @ (w_init - w_star)).norm()
    print(f"PROBE flat_direction_error_left={left.item():.3g}")

tail = losses[-steps // 20:]
print(f"FINAL loss={np.mean(tail):.4f} r2={r2:.4f}")
