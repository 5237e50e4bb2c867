"""Wine cultivar classification (sklearn wine, 13 chemical measurements) with feature-token attention.

Model: each measurement becomes a 16-d token (value * w_j + b_j, per feature j), a learned [CLS]
token is prepended, one multi-head self-attention block with a GELU feed-forward (residual), and
a linear classifier on [CLS]. Optimizer: SGD with momentum 0.9 (lr 0.01), gradient-norm clipping
at 0.5, mini-batches of 32 from a shuffled DataLoader, cross-entropy.
Cause: the measurements go in raw (proline ~300-1700, magnesium ~100, hue ~1), so the tokens of
the large features swamp the attention scores and the curvature along their weights, and training
stalls. FIXED=1 standardises every feature (train mean/std).
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_wine
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
np.random.seed(0)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

data = load_wine()
X = torch.tensor(data.data, dtype=torch.float32)
y = torch.tensor(data.target, dtype=torch.long)
perm = torch.randperm(len(y))
X, y = X[perm], y[perm]
Xtr, ytr, Xte, yte = X[:130], y[:130], X[130:], y[130:]

if FIXED:
    mu, sd = Xtr.mean(0), Xtr.std(0)
    Xtr = (Xtr - mu) / sd
    Xte = (Xte - mu) / sd

loader = DataLoader(TensorDataset(Xtr, ytr), batch_size=32, shuffle=True)


class FeatureTokenAttention(nn.Module):
    def __init__(self, n_features=13, d=16, heads=4, n_classes=3):
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_features, d) / d ** 0.5)
        self.b = nn.Parameter(torch.zeros(n_features, d))
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.1)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, 32), nn.GELU(), nn.Linear(32, d))
        self.head = nn.Linear(d, n_classes)

    def tokens(self, x):
        t = x.unsqueeze(-1) * self.w + self.b
        return torch.cat([self.cls.expand(x.shape[0], -1, -1), t], dim=1)

    def forward(self, x):
        h = self.tokens(x)
        a, _ = self.attn(h, h, h, need_weights=False)
        h = h + a
        h = h + self.ff(h)
        return self.head(h[:, 0])


model = FeatureTokenAttention()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

EPOCHS = 80
losses = []
for epoch in range(EPOCHS):
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        losses.append(loss.item())
    if epoch % 20 == 0:
        print(f"epoch {epoch} loss {np.mean(losses[-len(loader):]):.4f}")

model.eval()
with torch.no_grad():
    train_acc = (model(Xtr).argmax(1) == ytr).float().mean().item()
    test_acc = (model(Xte).argmax(1) == yte).float().mean().item()

if PROBE:
    # how much the largest feature's tokens dominate: RMS of each feature's token after
    # training, largest over median
    with torch.no_grad():
        tok_rms = model.tokens(Xtr)[:, 1:].pow(2).mean(dim=(0, 2)).sqrt()
    print(f"PROBE token_rms_max_over_median={(tok_rms.max() / tok_rms.median()).item():.1f}")

tail = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_acc={test_acc:.3f} train_acc={train_acc:.3f}")
