"""Power-plant output regression with regime changes: 6 standardized sensor
features, the output follows a different law in each operating regime. Model:
mixture of 4 small MLP experts with a softmax gating network (custom forward),
Huber loss, plain SGD over a shuffled DataLoader of 32-row batches.
Cause of failure: the SGD learning rate (1e-3) is about a hundred times too
small for this well-conditioned problem; the loss decreases smoothly and
consistently but crawls, so after the whole budget the fit is still poor.
FIXED=1: lr=0.1.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

rng = np.random.default_rng(0)
n = 6000
X = rng.standard_normal((n, 6))
regime = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0).astype(int)
W = rng.standard_normal((4, 6)) * 0.8
base = np.einsum("nd,nd->n", X, W[regime])
y = base + 0.5 * np.sin(2 * X[:, 2]) * (regime % 2) + 0.1 * rng.standard_normal(n)
y = (y - y.mean()) / y.std()
X = (X - X.mean(0)) / X.std(0)
X_t = torch.tensor(X, dtype=torch.float32)
y_t = torch.tensor(y, dtype=torch.float32)
X_train, y_train, X_test, y_test = X_t[:5000], y_t[:5000], X_t[5000:], y_t[5000:]
loader = DataLoader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True)


class MixtureOfExperts(nn.Module):
    def __init__(self, d_in=6, n_experts=4, hidden=32):
        super().__init__()
        self.gate = nn.Linear(d_in, n_experts)
        self.w1 = nn.Parameter(torch.randn(n_experts, d_in, hidden) / d_in ** 0.5)
        self.b1 = nn.Parameter(torch.zeros(n_experts, hidden))
        self.w2 = nn.Parameter(torch.randn(n_experts, hidden) / hidden ** 0.5)
        self.b2 = nn.Parameter(torch.zeros(n_experts))

    def forward(self, x):
        g = F.softmax(self.gate(x), dim=-1)                         # (B, E)
        h = F.relu(torch.einsum("bd,edh->beh", x, self.w1) + self.b1)
        expert_out = (h * self.w2).sum(-1) + self.b2                  # (B, E)
        return (g * expert_out).sum(-1)


model = MixtureOfExperts()
lr = 0.1 if FIXED else 1e-3
opt = torch.optim.SGD(model.parameters(), lr=lr)
loss_fn = nn.HuberLoss(delta=1.0)
epochs = 12

losses, rel_updates = [], []
for epoch in range(epochs):
    for xb, yb in loader:
        if PROBE:
            before = [p.detach().clone() for p in model.parameters()]
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if PROBE:
            num = sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before))
            den = sum((b ** 2).sum() for b in before)
            rel_updates.append((num / den).sqrt().item())
    print(f"epoch {epoch + 1} huber {np.mean(losses[-len(loader):]):.4f}")

with torch.no_grad():
    pred = model(X_test)
    r2 = (1 - ((pred - y_test) ** 2).mean() / y_test.var()).item()
if PROBE:
    print(f"PROBE relative_update_per_step={np.mean(rel_updates):.2e}")
k = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_r2={r2:.4f}")
