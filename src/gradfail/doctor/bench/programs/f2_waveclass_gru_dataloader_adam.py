"""Waveform classification (4 frequency bands of noisy 30-step signals) with a GRU classifier.

Model: nn.GRU(1, 32) with a linear head on the last hidden state; cross-entropy.
Training: Adam (lr 0.01), DataLoader over a TensorDataset (batch 32), 12 epochs.
Cause of failure: optimizer.zero_grad() was hoisted out of the batch loop to the top of the
epoch loop, so within an epoch each .grad is the running sum of all the batch gradients so far
and the updates follow a stale, ever-growing sum: the loss falls early and then rises and
oscillates within every epoch. FIXED=1 clears the gradients before every batch again.
"""
import os
import math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(3)
np.random.seed(3)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"


def make_signals(n, length=30):
    cls = torch.randint(0, 4, (n,))
    freq = 0.05 + 0.05 * cls.float() + 0.01 * torch.rand(n)
    phase = 2 * math.pi * torch.rand(n, 1)
    t = torch.arange(length).float()
    sig = torch.sin(2 * math.pi * freq[:, None] * t + phase) + 0.3 * torch.randn(n, length)
    return sig.unsqueeze(-1), cls


x_tr, y_tr = make_signals(1280)
x_te, y_te = make_signals(500)
loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=32, shuffle=True)


class GRUClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(1, 32, batch_first=True)
        self.fc = nn.Linear(32, 4)

    def forward(self, x):
        _, h = self.gru(x)
        return self.fc(h[-1])


model = GRUClassifier()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

losses, grad_norms = [], []
for epoch in range(12):
    model.train()
    if not FIXED:
        optimizer.zero_grad()
    for xb, yb in loader:
        if FIXED:
            optimizer.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        if PROBE:
            grad_norms.append(torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item())
        optimizer.step()
        losses.append(loss.item())
    if epoch % 3 == 0:
        print(f"epoch {epoch} loss={np.mean(losses[-50:]):.4f}")

if PROBE:
    # norm of .grad at the last batch of each epoch relative to the first batch
    per_epoch = len(loader)
    ratios = [grad_norms[e * per_epoch + per_epoch - 1] / grad_norms[e * per_epoch]
              for e in range(len(grad_norms) // per_epoch)]
    print(f"PROBE grad_norm_last_over_first_batch_of_epoch={np.median(ratios):.3g}")

model.eval()
with torch.no_grad():
    acc = (model(x_te).argmax(1) == y_te).float().mean().item()
tail = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_acc={acc:.3f}")
