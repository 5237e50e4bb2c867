"""Temporal-order classification (Hochreiter & Schmidhuber's task, short version) with a
GRU: sequences of 24 distractor tokens contain two marker tokens, each either X or Y, at
random positions; the class (XX, XY, YX, YY) is the markers' order.  One-hot inputs ->
nn.GRU(48) -> linear classifier, RMSprop (lr 2e-3), cross-entropy, a fixed training set
of 6000 sequences visited in shuffled mini-batches of 100, StepLR halving the lr twice.

Healthy: the GRU learns to store both markers and reaches near-perfect test accuracy.
FIXED=1 changes nothing.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"   # healthy: nothing to fix
PROBE = os.environ.get("PROBE") == "1"

T, N_DISTRACT = 24, 6
X_TOK, Y_TOK = N_DISTRACT, N_DISTRACT + 1
VOCAB = N_DISTRACT + 2


def make_set(n, rng):
    seq = rng.integers(0, N_DISTRACT, size=(n, T))
    p1 = rng.integers(2, 10, size=n)
    p2 = rng.integers(12, 20, size=n)
    m1 = rng.integers(0, 2, size=n)
    m2 = rng.integers(0, 2, size=n)
    seq[np.arange(n), p1] = X_TOK + m1
    seq[np.arange(n), p2] = X_TOK + m2
    onehot = np.eye(VOCAB, dtype=np.float32)[seq]
    return torch.from_numpy(onehot), torch.from_numpy(2 * m1 + m2)


rng = np.random.default_rng(0)
train_x, train_y = make_set(6000, rng)
test_x, test_y = make_set(2000, rng)


class OrderGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(VOCAB, 48, batch_first=True)
        self.cls = nn.Linear(48, 4)

    def forward(self, x):
        _, h_last = self.gru(x)
        return self.cls(h_last[-1])


net = OrderGRU()
optimizer = torch.optim.RMSprop(net.parameters(), lr=2e-3)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)

EPOCHS, BS = 6, 100
losses = []
for epoch in range(EPOCHS):
    perm = torch.randperm(len(train_y))
    for i in range(0, len(perm), BS):
        idx = perm[i:i + BS]
        loss = F.cross_entropy(net(train_x[idx]), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    scheduler.step()
    if epoch % 2 == 1:
        print(f"epoch {epoch + 1:2d} loss {np.mean(losses[-60:]):.4f}")

with torch.no_grad():
    test_acc = (net(test_x).argmax(1) == test_y).float().mean().item()
if PROBE:
    print(f"PROBE test_acc_over_chance={test_acc / 0.25:.3g}")
k = len(losses) // 20
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_acc={test_acc:.3f}")
