"""Classify noisy synthetic 12x12 glyphs (ring / plus / triangle) with a small ConvNet
(conv-ReLU-pool x2, linear), Adam on batches of 32 drawn from a fixed set of 6000 images,
cross-entropy, 600 steps.

Failure: Adam runs with lr=3e-5. Adam's update per weight is about lr, so in 600 steps
each weight moves by about a hundredth at most: the loss drifts down smoothly but barely,
with consistent gradients and nothing else wrong. FIXED=1 uses lr=3e-3 (x100).
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(12)
np.random.seed(12)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

yy, xx = np.mgrid[0:12, 0:12]


def glyph(kind, cy, cx, r):
    if kind == 0:
        d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        return (np.abs(d - r) < 0.8).astype(np.float32)
    if kind == 1:
        img = np.zeros((12, 12), np.float32)
        img[int(cy), max(0, int(cx - r)):int(cx + r) + 1] = 1
        img[max(0, int(cy - r)):int(cy + r) + 1, int(cx)] = 1
        return img
    inside = (yy - cy <= r) & (yy - cy >= -r) & (np.abs(xx - cx) <= (yy - cy + r) / 2)
    return inside.astype(np.float32)


def make_set(n, rng):
    labels = rng.integers(0, 3, n)
    imgs = np.stack([glyph(k, rng.uniform(4, 8), rng.uniform(4, 8), rng.uniform(2, 3.5))
                     for k in labels])
    imgs += 0.4 * rng.standard_normal(imgs.shape)
    return torch.tensor(imgs[:, None], dtype=torch.float32), torch.tensor(labels)


rng = np.random.default_rng(12)
X_train, y_train = make_set(6000, rng)
X_val, y_val = make_set(1000, rng)


class GlyphNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 12, 3, padding=1)
        self.c2 = nn.Conv2d(12, 24, 3, padding=1)
        self.fc = nn.Linear(24 * 3 * 3, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.fc(torch.flatten(x, 1))


net = GlyphNet()
lr = 3e-3 if FIXED else 3e-5
opt = torch.optim.Adam(net.parameters(), lr=lr)

STEPS = 600
losses = []
if PROBE:
    w0 = [p.detach().clone() for p in net.parameters()]
for step in range(STEPS):
    idx = torch.randint(0, len(y_train), (32,))
    loss = F.cross_entropy(net(X_train[idx]), y_train[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step % 100 == 0:
        print(f"step {step:3d}  loss {np.mean(losses[-20:]):.4f}")

with torch.no_grad():
    val_acc = (net(X_val).argmax(1) == y_val).float().mean().item()

if PROBE:
    # how far training moved the weights, relative to their initial size
    moved = torch.cat([(p.detach() - q).flatten() for p, q in zip(net.parameters(), w0)])
    init = torch.cat([q.flatten() for q in w0])
    print(f"PROBE total_relative_weight_change={(moved.norm() / init.norm()).item():.2e}")

tail = losses[-STEPS // 20:]
print(f"FINAL loss={np.mean(tail):.4f} val_acc={val_acc:.3f}")
