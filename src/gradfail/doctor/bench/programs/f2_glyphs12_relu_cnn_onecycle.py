"""Classify noisy 12x12 images of six 5x5 glyphs (plus, cross, box, bar pairs, corner, diamond)
drawn at random positions.

Model: Conv2d(1,16) -> ReLU -> pool -> Conv2d(16,32) -> ReLU -> global max-pool -> Linear;
SGD with Nesterov momentum under a OneCycleLR schedule, mini-batches of 48, cross-entropy.
Cause: the conv biases are initialised to -1.5 "for sparse features"; with the small default
weights most channels have a negative pre-activation at every position of every image, output
zero, get zero gradient and never come back, leaving too few live channels to tell the glyphs
apart. FIXED=1 initialises the conv biases to zero.
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

G = {
    "plus":    ["..#..", "..#..", "#####", "..#..", "..#.."],
    "cross":   ["#...#", ".#.#.", "..#..", ".#.#.", "#...#"],
    "box":     ["#####", "#...#", "#...#", "#...#", "#####"],
    "bars":    ["#####", ".....", ".....", ".....", "#####"],
    "corner":  ["#....", "#....", "#....", "#....", "#####"],
    "diamond": ["..#..", ".#.#.", "#...#", ".#.#.", "..#.."],
}
GLYPHS = [np.array([[c == "#" for c in row] for row in g], dtype=np.float32) for g in G.values()]


def render(n):
    x = 0.25 * rng.standard_normal((n, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, len(GLYPHS), n)
    for i in range(n):
        r, c = rng.integers(0, 8, 2)
        x[i, 0, r:r + 5, c:c + 5] += GLYPHS[y[i]]
    return torch.from_numpy(x), torch.from_numpy(y)


x_train, y_train = render(4000)
x_test, y_test = render(1000)


class GlyphCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32, len(GLYPHS))
        for conv in (self.conv1, self.conv2):
            nn.init.constant_(conv.bias, 0.0 if FIXED else -1.5)

    def features(self, x):
        a1 = F.relu(self.conv1(x))
        a2 = F.relu(self.conv2(F.max_pool2d(a1, 2)))
        return a1, a2

    def forward(self, x):
        _, a2 = self.features(x)
        return self.fc(a2.amax(dim=(2, 3)))


net = GlyphCNN()
steps = 800
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=steps)

losses = []
for step in range(steps):
    idx = torch.from_numpy(rng.integers(0, len(x_train), 48))
    loss = F.cross_entropy(net(x_train[idx]), y_train[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
    if step % 400 == 0:
        print(f"step {step:4d} loss {loss.item():.3f}")

with torch.no_grad():
    acc = (net(x_test).argmax(1) == y_test).float().mean().item()
    if PROBE:
        a1, a2 = net.features(x_train[:2000])
        # a channel is dead if it is zero at every position of every image
        dead1 = (a1.amax(dim=(0, 2, 3)) <= 0).float().mean().item()
        dead2 = (a2.amax(dim=(0, 2, 3)) <= 0).float().mean().item()
        print(f"PROBE dead_channel_fraction={(dead1 * 16 + dead2 * 32) / 48:.3f}")

print(f"FINAL loss={np.mean(losses[-steps // 20:]):.4f} test_acc={acc:.3f}")
