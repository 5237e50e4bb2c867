"""Adding problem: a sequence of 20 (value, marker) pairs; the target is the sum
of the two values whose marker is 1. Model: single-layer GRU (hidden 32) with a
linear read-out, MSE loss, RMSprop lr 2e-2, fresh random batches of 64.

Cause of failure: optimizer.zero_grad() ended up inside the `if step == 0:`
set-up block, so gradients are cleared once and then pile up across all later
steps; RMSprop follows a stale running sum and the loss never settles.
FIXED=1 clears the gradients at every step.
"""
import os
import math
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(3)
np.random.seed(3)
FIXED = os.environ.get("FIXED") == "1"

SEQ_LEN, BATCH, STEPS = 20, 64, 500


def make_batch(n):
    values = torch.rand(n, SEQ_LEN)
    picks = torch.rand(n, SEQ_LEN).argsort(dim=1)[:, :2]
    markers = torch.zeros(n, SEQ_LEN).scatter_(1, picks, 1.0)
    x = torch.stack([values, markers], dim=-1)
    y = (values * markers).sum(1, keepdim=True)
    return x, y


class GRURegressor(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.gru = nn.GRU(2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1])


model = GRURegressor()
optimizer = torch.optim.RMSprop(model.parameters(), lr=2e-2)
loss_fn = nn.MSELoss()
x_val, y_val = make_batch(512)
baseline = y_val.var().item()   # MSE of always predicting the mean

losses = []
for step in range(STEPS):
    if step == 0:
        model.train()
        optimizer.zero_grad()
    if FIXED:
        optimizer.zero_grad()
    x, y = make_batch(BATCH)
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if step % 125 == 124:
        print(f"step {step + 1}: mse {np.mean(losses[-50:]):.4f}")

if os.environ.get("PROBE") == "1":
    grads = [p.grad.detach().clone() for p in model.parameters()]
    model.zero_grad()
    loss_fn(model(x), y).backward()
    stored = math.sqrt(sum(g.pow(2).sum().item() for g in grads))
    fresh = math.sqrt(sum(p.grad.pow(2).sum().item() for p in model.parameters()))
    print(f"PROBE stored_to_fresh_grad_norm_ratio={stored / fresh:.3g}")

model.eval()
with torch.no_grad():
    val_mse = loss_fn(model(x_val), y_val).item()
r2 = 1 - val_mse / baseline
tail = max(1, STEPS // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} r2={r2:.3f}")
