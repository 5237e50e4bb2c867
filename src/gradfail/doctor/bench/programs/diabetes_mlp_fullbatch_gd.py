"""Disease-progression regression (sklearn diabetes) with a 2-hidden-layer ReLU MLP
(nn.Sequential), full-batch gradient descent with momentum, MSE loss on standardised data.

The learning rate is 1.5, far above the stability limit 2(1+momentum)/lambda_max ~ 0.55
of this loss (lambda_max ~ 7), so every step overshoots further than the last: within a
few dozen steps the loss overflows to inf and the weights become NaN.  The loop keeps
running.
FIXED=1 uses lr=0.02.
"""
import os
import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_diabetes

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

data = load_diabetes()
X = data.data.astype(np.float32)
y = data.target.astype(np.float32)
X = (X - X.mean(0)) / X.std(0)
y = (y - y.mean()) / y.std()
X, y = torch.tensor(X), torch.tensor(y).unsqueeze(1)

model = nn.Sequential(
    nn.Linear(10, 64), nn.ReLU(),
    nn.Linear(64, 64), nn.ReLU(),
    nn.Linear(64, 1),
)
LR = 0.02 if FIXED else 1.5
optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
mse = nn.MSELoss()

if PROBE:
    # largest Hessian eigenvalue of the loss at initialisation, by power iteration
    params = [p for p in model.parameters()]
    grads = torch.autograd.grad(mse(model(X), y), params, create_graph=True)
    v = [torch.randn_like(p) for p in params]
    lam = 0.0
    for _ in range(30):
        norm = torch.sqrt(sum((u * u).sum() for u in v))
        v = [u / norm for u in v]
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        lam = sum((a * b).sum() for a, b in zip(hv, v)).item()
        v = [h.detach() for h in hv]
    print(f"PROBE lr_times_lambda_max={LR * lam:.3g}")

STEPS = 1500
losses = []
for step in range(STEPS):
    optimizer.zero_grad()
    loss = mse(model(X), y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if step % 300 == 0:
        print(f"step {step:5d}  mse {loss.item():.4g}")

with torch.no_grad():
    pred = model(X)
    r2 = 1 - ((pred - y) ** 2).mean().item() / y.var().item()
k = STEPS // 20
print(f"FINAL loss={np.mean(losses[-k:]):.4f} train_r2={r2:.3f}")
