"""Breast-cancer diagnosis (sklearn) with logistic regression (one nn.Linear + sigmoid),
mini-batch SGD (lr 0.5), standardised features, hand-written binary cross-entropy
    loss = -(y * log(p) + (1 - y) * log(1 - p)).

The classes are almost linearly separable, so the logits keep growing; once a logit
passes ~17 the float32 sigmoid returns exactly 1.0 (or 0.0), log(1 - p) = log(0) = -inf and
0 * -inf = NaN: the loss turns NaN, the gradient is NaN and so are the weights from then
on.  The loop keeps going.  FIXED=1 computes the same loss from the logits with
F.binary_cross_entropy_with_logits (the numerically stable built-in).
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

ds = load_breast_cancer()
X = (ds.data - ds.data.mean(0)) / ds.data.std(0)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(ds.target, dtype=torch.float32)
n = len(y)

clf = nn.Linear(X.shape[1], 1)
sgd = torch.optim.SGD(clf.parameters(), lr=0.5)

EPOCHS, BATCH = 60, 32
hist = []
zero_log_args = None
for ep in range(EPOCHS):
    perm = torch.randperm(n)
    for i in range(0, n, BATCH):
        b = perm[i:i + BATCH]
        z = clf(X[b]).squeeze(1)
        if FIXED:
            loss = F.binary_cross_entropy_with_logits(z, y[b])
        else:
            p = torch.sigmoid(z)
            loss = -(y[b] * torch.log(p) + (1 - y[b]) * torch.log(1 - p)).mean()
        if PROBE and zero_log_args is None and not torch.isfinite(loss):
            p = torch.sigmoid(z)
            zero_log_args = int(((p == 0) | (p == 1)).sum())
        sgd.zero_grad()
        loss.backward()
        sgd.step()
        hist.append(loss.item())
    if ep % 15 == 0:
        print(f"epoch {ep:2d} loss {np.mean(hist[-18:]):.4f}")

if PROBE:
    # log() arguments that were exactly 0 in the first batch whose loss was not finite
    print(f"PROBE zero_log_args_at_first_nonfinite={zero_log_args or 0}")

with torch.no_grad():
    acc = ((clf(X).squeeze(1) > 0).float() == y).float().mean().item()
k = max(1, len(hist) // 20)
print(f"FINAL loss={np.mean(hist[-k:]):.4f} train_acc={acc:.3f}")
