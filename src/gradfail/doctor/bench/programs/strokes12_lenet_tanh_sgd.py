"""Stroke-pattern recognition: a LeNet-style tanh CNN on synthetic 12x12 images stored as 0-255.

Classes: horizontal bar, vertical bar, diagonal, hollow square on a noisy background.
Model: Conv2d-tanh-AvgPool-Conv2d-tanh-global pool-Linear, cross-entropy, momentum SGD with
clip_grad_norm_(1.0), 800 steps. Cause of failure: raw 8-bit intensities (0..255) go in
unscaled, so the first conv layer's pre-activations are in the hundreds, its tanh units are
pinned at +-1 and training crawls. FIXED=1 standardises the pixels (training mean/std).
"""
import os
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(5)
np.random.seed(5)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"


def draw(kind, rng):
    img = rng.uniform(0, 60, (12, 12))
    r, c = rng.integers(1, 8, 2)
    ink = rng.uniform(170, 255)
    if kind == 0:
        img[r + 1, c:c + 4] = ink
    elif kind == 1:
        img[r:r + 4, c + 1] = ink
    elif kind == 2:
        for k in range(4):
            img[r + k, c + k] = ink
    else:
        img[r, c:c + 4] = img[r + 3, c:c + 4] = ink
        img[r:r + 4, c] = img[r:r + 4, c + 3] = ink
    return img


rng = np.random.default_rng(5)
labels = rng.integers(0, 4, 2400)
images = np.stack([draw(k, rng) for k in labels]).round().astype(np.float32)
if FIXED:
    images = (images - images[:2000].mean()) / images[:2000].std()
X = torch.tensor(images).unsqueeze(1)
y = torch.tensor(labels)
Xtr, ytr, Xte, yte = X[:2000], y[:2000], X[2000:], y[2000:]

model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1), nn.Tanh(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4),
)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
criterion = nn.CrossEntropyLoss()

steps, bs = 800, 32
losses = []
for step in range(steps):
    idx = torch.randint(0, 2000, (bs,))
    loss = criterion(model(Xtr[idx]), ytr[idx])
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    losses.append(loss.item())
    if step % 200 == 0:
        print(f"step {step:4d} loss {np.mean(losses[-50:]):.4f}")

with torch.no_grad():
    test_acc = (model(Xte).argmax(1) == yte).float().mean().item()
if PROBE:
    with torch.no_grad():
        act = torch.tanh(model[0](Xtr[:500]))
    print(f"PROBE conv1_tanh_saturated_fraction={(act.abs() > 0.99).float().mean().item():.3f}")
tail = losses[-steps // 20:]
print(f"FINAL loss={np.mean(tail):.4f} test_acc={test_acc:.4f}")
