"""Classify noisy 10x10 images of five tetromino shapes (I, O, T, L, S) placed at random.

Model: two Conv2d layers with tanh activations, max-pooling, a linear head; SGD with
Nesterov momentum, StepLR, mini-batches of 32, cross-entropy.
Cause: conv biases are initialised to +4 ("keep the units switched on"), so every tanh sits
in its upper tail (output ~0.999, derivative ~0.001-0.01) whatever the image: the features
barely depend on the input and the conv filters get almost no gradient.
FIXED=1 keeps PyTorch's default (small, variance-preserving) bias initialisation.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
rng = np.random.default_rng(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

SHAPES = [
    np.array([[1, 1, 1, 1]]),                    # I
    np.array([[1, 1], [1, 1]]),                  # O
    np.array([[1, 1, 1], [0, 1, 0]]),            # T
    np.array([[1, 0], [1, 0], [1, 1]]),          # L
    np.array([[0, 1, 1], [1, 1, 0]]),            # S
]


def make_images(n):
    imgs = np.zeros((n, 1, 10, 10), dtype=np.float32)
    labels = rng.integers(0, len(SHAPES), size=n)
    for i, c in enumerate(labels):
        s = SHAPES[c]
        r = rng.integers(0, 10 - s.shape[0] + 1)
        q = rng.integers(0, 10 - s.shape[1] + 1)
        imgs[i, 0, r:r + s.shape[0], q:q + s.shape[1]] = s
    imgs += 0.3 * rng.standard_normal(imgs.shape).astype(np.float32)
    return torch.from_numpy(imgs), torch.from_numpy(labels).long()


Xtr, ytr = make_images(6000)
Xte, yte = make_images(1000)


class ShapeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 12, 3, padding=1)
        self.c2 = nn.Conv2d(12, 24, 3, padding=1)
        self.head = nn.Linear(24 * 2 * 2, 5)
        if not FIXED:
            for conv in (self.c1, self.c2):
                nn.init.constant_(conv.bias, 4.0)

    def forward(self, x, keep=None):
        z1 = self.c1(x)
        h = F.max_pool2d(torch.tanh(z1), 2)          # 5x5
        z2 = self.c2(h)
        h = F.max_pool2d(torch.tanh(z2), 2)          # 2x2
        if keep is not None:
            keep.extend([z1, z2])
        return self.head(h.flatten(1))


net = ShapeNet()
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=600, gamma=0.3)

steps, bs = 1500, 32
losses = []
for step in range(steps):
    idx = torch.from_numpy(rng.integers(0, len(Xtr), size=bs))
    loss = F.cross_entropy(net(Xtr[idx]), ytr[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
    if step % 500 == 0:
        print(f"step {step} loss {loss.item():.3f}")

net.eval()
with torch.no_grad():
    acc = (net(Xte).argmax(1) == yte).float().mean().item()
    if PROBE:
        pre = []
        net(Xtr[:500], keep=pre)
        # mean tanh derivative 1 - tanh^2 of the first conv layer (1.0 is the maximum);
        # once it is saturated, nothing above it can see the image
        dact = 1 - torch.tanh(pre[0]) ** 2
        print(f"PROBE conv1_mean_tanh_derivative={dact.mean().item():.4f}")

print(f"FINAL loss={np.mean(losses[-steps // 20:]):.4f} test_acc={acc:.3f}")
