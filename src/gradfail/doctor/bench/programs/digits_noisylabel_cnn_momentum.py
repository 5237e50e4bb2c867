"""Digits (sklearn 8x8) with 60% of the training labels replaced by a random class
(annotator noise), classified by a small CNN (two 3x3 conv + ReLU, max-pool, linear),
trained with SGD, momentum 0.9, lr 0.01, 600 steps.

Failure: mini-batches of 2 images. With this much label noise each 2-sample gradient is
mostly noise (often it pulls toward a wrong class), and with momentum the weights wander,
so training stays noisy and far from what the data supports.
FIXED=1 uses mini-batches of 128 (same steps, same learning rate).
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(6)
rng = np.random.default_rng(6)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

digits = load_digits()
X = (digits.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8) in [0, 1]
y = digits.target.astype(np.int64)
perm = rng.permutation(len(y))
X, y = X[perm], y[perm]
X_train, y_train, X_test, y_test = X[:1400], y[:1400].copy(), X[1400:], y[1400:]

# noisy annotations: 60% of the training labels replaced by a random class
noisy = rng.random(len(y_train)) < 0.6
y_train[noisy] = rng.integers(0, 10, noisy.sum())

X_train, y_train = torch.from_numpy(X_train), torch.from_numpy(y_train)
X_test, y_test = torch.from_numpy(X_test), torch.from_numpy(y_test)

model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(16 * 4 * 4, 10),
)
BATCH = 128 if FIXED else 2
STEPS = 600
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def grad_vec(xb, yb):
    model.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def minibatch_grad_snr(n_batches=64):
    """||mean of mini-batch grads||^2 / mean squared deviation, at the training batch size."""
    gen = torch.Generator().manual_seed(11)
    gs = torch.stack([grad_vec(X_train[i], y_train[i]) for i in
                      (torch.randint(0, len(y_train), (BATCH,), generator=gen)
                       for _ in range(n_batches))])
    model.zero_grad()
    mean = gs.mean(0)
    noise = (gs - mean).pow(2).sum(1).mean()
    return (mean.pow(2).sum() / noise).item()


losses, snrs = [], []
for step in range(STEPS):
    model.train()
    idx = torch.randint(0, len(y_train), (BATCH,))
    loss = F.cross_entropy(model(X_train[idx]), y_train[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if PROBE and step in (50, 150, 300):
        snrs.append(minibatch_grad_snr())
    if step % 300 == 0:
        print(f"step {step:5d}  loss {np.mean(losses[-50:]):.3f}")

model.eval()
with torch.no_grad():
    test_acc = (model(X_test).argmax(1) == y_test).float().mean().item()

if PROBE:
    print(f"PROBE minibatch_grad_snr={np.mean(snrs):.3g}")

tail = losses[-STEPS // 20:]
print(f"FINAL loss={np.mean(tail):.3f} test_acc={test_acc:.3f}")
