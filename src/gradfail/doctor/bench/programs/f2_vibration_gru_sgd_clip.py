"""Vibration-sensor fault classification: 16-step noisy 1-D signals from
three machine states (different dominant frequency and offset); a one-layer GRU reads
the signal and a linear head classifies the last hidden state. SGD with
momentum, gradient-norm clipping, DataLoader over a TensorDataset.
Cause of failure: the maintenance log labels are unreliable (half of them are
random) and the loader serves batches of only 2 signals, so each step's
gradient is mostly label noise: training crawls and jitters.
FIXED=1: batch_size=64 in the DataLoader (same number of steps).
"""
import os
import math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

T, N_TRAIN, N_TEST = 16, 12000, 2000
FREQS = [0.05, 0.12, 0.22]


def make_signals(n, rng):
    cls = rng.integers(0, 3, n)
    t = np.arange(T)
    f = np.array(FREQS)[cls][:, None] * rng.uniform(0.9, 1.1, (n, 1))
    phase = rng.uniform(0, 2 * math.pi, (n, 1))
    amp = rng.uniform(0.5, 1.5, (n, 1))
    offset = np.array([-0.25, 0.0, 0.25])[cls][:, None]
    x = offset + amp * np.sin(2 * math.pi * f * t + phase) + 0.3 * rng.standard_normal((n, T))
    return x.astype(np.float32)[..., None], cls


rng = np.random.default_rng(0)
x_tr, c_tr = make_signals(N_TRAIN, rng)
x_te, c_te = make_signals(N_TEST, rng)
noisy = rng.random(N_TRAIN) < 0.5
y_tr = np.where(noisy, rng.integers(0, 3, N_TRAIN), c_tr)     # logged labels

train_ds = TensorDataset(torch.from_numpy(x_tr), torch.from_numpy(y_tr))
loader = DataLoader(train_ds, batch_size=64 if FIXED else 2, shuffle=True, drop_last=True)
X_te, Y_te = torch.from_numpy(x_te), torch.from_numpy(c_te)


class GRUClassifier(nn.Module):
    def __init__(self, hidden=24, n_classes=3):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x):
        _, h = self.gru(x)
        return self.head(h[-1])


model = GRUClassifier()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
steps = 1200


def grad_snr(n=192):
    """||mean g||^2 / (tr Cov(g) / batch_size) from per-sample gradients."""
    gen = torch.Generator().manual_seed(7)
    idx = torch.randint(0, N_TRAIN, (n,), generator=gen)
    xs, ys = train_ds.tensors
    grads = []
    for i in idx:
        model.zero_grad()
        F.cross_entropy(model(xs[i:i + 1]), ys[i:i + 1]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    G = torch.stack(grads)
    model.zero_grad()
    mean = G.mean(0)
    var = ((G - mean) ** 2).sum(1).mean()
    return (mean.pow(2).sum() / (var / loader.batch_size)).item()


def accuracy():
    model.eval()
    with torch.no_grad():
        acc = (model(X_te).argmax(1) == Y_te).float().mean().item()
    model.train()
    return acc


losses, snrs = [], []
step = 0
while step < steps:
    for xb, yb in loader:
        if PROBE and step in (0, 300):
            snrs.append(grad_snr())
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 300 == 0:
            print(f"step {step} loss {np.mean(losses[-300:]):.4f} clean_test_acc {accuracy():.3f}")
        if step == steps:
            break

if PROBE:
    print(f"PROBE batch_grad_snr={np.mean(snrs):.3g}")
k = steps // 20
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_acc={accuracy():.4f}")
