"""Disease-progression regression on sklearn's diabetes data with a linear model.

Data: the 442-patient diabetes set, 10 features standardised, target standardised.
Model: nn.Linear(10, 1), MSE, SGD with momentum 0.9 (lr 0.01) over a shuffled
DataLoader with batch size 32, 60 epochs (840 steps).
Healthy: a well-posed, mildly correlated least-squares problem; the fit reaches the
closed-form least-squares R^2 (about 0.52 - the data are noisy).
FIXED=1 changes nothing.
"""
import os
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_diabetes

torch.manual_seed(18)
np.random.seed(18)
FIXED = os.environ.get("FIXED") == "1"   # nothing to fix in a healthy run
PROBE = os.environ.get("PROBE") == "1"

X, y = load_diabetes(return_X_y=True)
X = (X - X.mean(0)) / X.std(0)
y = (y - y.mean()) / y.std()
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)

reg = nn.Linear(10, 1)
optimizer = torch.optim.SGD(reg.parameters(), lr=0.01, momentum=0.9)
mse = nn.MSELoss()

losses = []
for epoch in range(60):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = mse(reg(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    if epoch % 15 == 0:
        print(f"epoch {epoch:2d} mse {np.mean(losses[-14:]):.4f}")

with torch.no_grad():
    r2 = 1 - mse(reg(X), y).item() / y.var(unbiased=False).item()
if PROBE:
    Xb = torch.cat([X, torch.ones(len(X), 1)], 1).double()
    w = torch.linalg.lstsq(Xb, y.double()).solution
    r2_ls = 1 - ((Xb @ w - y.double()) ** 2).mean().item() / y.double().var(unbiased=False).item()
    print(f"PROBE r2_gap_to_least_squares={r2_ls - r2:.4f}")
tail = losses[-len(losses) // 20:]
print(f"FINAL loss={np.mean(tail):.4f} r2={r2:.4f}")
