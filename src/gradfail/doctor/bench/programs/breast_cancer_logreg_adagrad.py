"""Logistic regression (a single nn.Linear on 30 features) for sklearn's breast_cancer
data, features standardised with training-set statistics, Adagrad (lr 0.1) on shuffled
mini-batches of 32, BCE-with-logits, small L2 penalty via weight_decay, 25 epochs.

Healthy: a correctly set-up convex problem; the loss falls quickly and settles, held-out
accuracy is ~97%. FIXED=1 changes nothing.
"""
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer

torch.manual_seed(15)
np.random.seed(15)

FIXED = os.environ.get("FIXED") == "1"  # nothing to fix
PROBE = os.environ.get("PROBE") == "1"

data = load_breast_cancer()
X, y = data.data.astype(np.float32), data.target.astype(np.float32)
order = np.random.permutation(len(y))
X, y = X[order], y[order]
split = 450
mu, sigma = X[:split].mean(0), X[:split].std(0)
X = (X - mu) / sigma
X_tr, y_tr = torch.from_numpy(X[:split]), torch.from_numpy(y[:split])
X_te, y_te = torch.from_numpy(X[split:]), torch.from_numpy(y[split:])

clf = nn.Linear(30, 1)
opt = torch.optim.Adagrad(clf.parameters(), lr=0.1, weight_decay=1e-3)
bce = nn.BCEWithLogitsLoss()

EPOCHS, BS = 25, 32
losses = []
for epoch in range(EPOCHS):
    perm = torch.randperm(split)
    for i in range(0, split, BS):
        b = perm[i:i + BS]
        opt.zero_grad()
        loss = bce(clf(X_tr[b]).squeeze(1), y_tr[b])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    if epoch % 5 == 4:
        print(f"epoch {epoch + 1:2d}  loss {np.mean(losses[-15:]):.4f}")

with torch.no_grad():
    test_acc = ((clf(X_te).squeeze(1) > 0).float() == y_te).float().mean().item()

if PROBE:
    majority = max(y_te.mean().item(), 1 - y_te.mean().item())
    print(f"PROBE test_acc_minus_majority_rate={test_acc - majority:.3f}")

tail = losses[-len(losses) // 20:]
print(f"FINAL loss={np.mean(tail):.4f} test_acc={test_acc:.3f}")
