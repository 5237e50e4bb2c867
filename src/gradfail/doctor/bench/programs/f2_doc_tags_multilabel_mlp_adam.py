"""Multi-label document tagging: 8 tags from 60-word bag-of-words counts (sklearn synthetic).

Model: MLP 60 -> 128 -> 128 -> 8 with LayerNorm, GELU and dropout; one sigmoid output per tag.
Loss: a hand-written binary cross-entropy, -(y*log(p) + (1-y)*log(1-p)), on p = sigmoid(logits).
Optimizer: Adam (lr 1e-2), mini-batches of 64 from a shuffled DataLoader, 1000 steps.
Cause: once the model grows confident, some logits pass ~17 and sigmoid rounds p to exactly 1.0
in float32; log(1-p) = log(0) = -inf (and 0 * -inf = NaN), the gradient turns NaN and poisons
every weight; the loss stays NaN from then on. FIXED=1 uses the stable built-in
binary_cross_entropy_with_logits on the logits.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_multilabel_classification
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
np.random.seed(0)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

X, Y = make_multilabel_classification(n_samples=4000, n_features=60, n_classes=8, n_labels=2,
                                      length=200, random_state=0)
X = np.log1p(X)
X = (X - X.mean(0)) / (X.std(0) + 1e-8)
X = torch.tensor(X, dtype=torch.float32)
Y = torch.tensor(Y, dtype=torch.float32)
Xtr, Ytr, Xte, Yte = X[:3200], Y[:3200], X[3200:], Y[3200:]

loader = DataLoader(TensorDataset(Xtr, Ytr), batch_size=64, shuffle=True)

model = nn.Sequential(
    nn.Linear(60, 128), nn.LayerNorm(128), nn.GELU(), nn.Dropout(0.1),
    nn.Linear(128, 128), nn.LayerNorm(128), nn.GELU(), nn.Dropout(0.1),
    nn.Linear(128, 8),
)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)


def tag_loss(logits, targets):
    if FIXED:
        return F.binary_cross_entropy_with_logits(logits, targets)
    p = torch.sigmoid(logits)
    return -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()


STEPS = 1000
losses = []
step = 0
while step < STEPS:
    for xb, yb in loader:
        logits = model(xb)
        loss = tag_loss(logits, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 250 == 0:
            print(f"step {step} loss {loss.item():.4f}")
        step += 1
        if step >= STEPS:
            break

model.eval()
with torch.no_grad():
    pred = (model(Xte) > 0).float()
    acc = (pred == Yte).float().mean().item()  # per-tag accuracy

if PROBE:
    # the step at which the loss first became non-finite (STEPS if never) and the share of
    # steps with a non-finite loss
    arr = np.array(losses)
    bad = np.where(~np.isfinite(arr))[0]
    first = int(bad[0]) if len(bad) else STEPS
    print(f"PROBE first_nonfinite_loss_step={first} nonfinite_fraction={len(bad) / STEPS:.2f}")

tail = max(1, STEPS // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} tag_acc={acc:.3f}")
