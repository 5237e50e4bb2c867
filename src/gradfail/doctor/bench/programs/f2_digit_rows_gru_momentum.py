"""Handwritten digits (sklearn 8x8) read row by row by a GRU: 8 time steps of 8 pixels.

Model: GRU (hidden 48) over the image rows, dropout 0.1 and a linear classifier on the last
state. Optimizer: SGD with momentum 0.9 (lr 0.03), mini-batches of 32 from a DataLoader,
cross-entropy, 12 epochs.
Cause: the training set is stored sorted by digit (as it was assembled, class by class) and the
DataLoader is built with shuffle=False, so consecutive batches all hold one class; each run of
batches drags the classifier toward its class and the next run drags it away, and the loss rises
and falls in waves every few steps instead of settling. FIXED=1 sets shuffle=True.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
np.random.seed(0)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

d = load_digits()
X = torch.tensor(d.images / 16.0, dtype=torch.float32)  # (N, 8 rows, 8 pixels)
y = torch.tensor(d.target, dtype=torch.long)
perm = torch.randperm(len(y))
X, y = X[perm], y[perm]
Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]

# the training set was assembled one digit at a time
order = torch.argsort(ytr, stable=True)
Xtr, ytr = Xtr[order], ytr[order]

loader = DataLoader(TensorDataset(Xtr, ytr), batch_size=32, shuffle=FIXED)


class RowGRU(nn.Module):
    def __init__(self, hidden=48):
        super().__init__()
        self.gru = nn.GRU(8, hidden, batch_first=True)
        self.drop = nn.Dropout(0.1)
        self.fc = nn.Linear(hidden, 10)

    def forward(self, x):
        _, h = self.gru(x)
        return self.fc(self.drop(h[-1]))


model = RowGRU()
opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)

EPOCHS = 12
losses = []
for epoch in range(EPOCHS):
    model.train()
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    if epoch % 4 == 0:
        print(f"epoch {epoch} loss {np.mean(losses[-len(loader):]):.4f}")

model.eval()
with torch.no_grad():
    pred = model(Xte).argmax(1)
    test_acc = (pred == yte).float().mean().item()
    train_acc = (model(Xtr).argmax(1) == ytr).float().mean().item()

if PROBE:
    # label entropy inside each mini-batch, as a fraction of the 10-class maximum log(10):
    # a batch that holds a single digit gives a gradient that pulls toward that digit only
    ents = []
    for _, yb in loader:
        p = torch.bincount(yb, minlength=10).float() / len(yb)
        p = p[p > 0]
        ents.append(-(p * p.log()).sum().item() / np.log(10))
    print(f"PROBE batch_label_entropy_fraction={np.mean(ents):.2f}")

tail = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_acc={test_acc:.3f} train_acc={train_acc:.3f}")
