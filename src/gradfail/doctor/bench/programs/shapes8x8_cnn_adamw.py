"""Classify noisy synthetic 8x8 images (horizontal bar / vertical bar / square / diagonal)
with a small 2-conv CNN, AdamW, batches of 64.

Failure: images and labels are kept in two separate tensors and batched by two separate
shuffling DataLoaders zipped together, so each batch pairs images with labels of other,
random images. With 16k images and a few epochs nothing can be memorised: the loss stays
at log 4 and the gradient carries no information about the real labels.
FIXED=1 batches images and labels together through one DataLoader over a TensorDataset.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(4)
np.random.seed(4)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"


def make_shapes(n, rng):
    imgs = np.zeros((n, 1, 8, 8), dtype=np.float32)
    labels = rng.integers(0, 4, size=n)
    for i, c in enumerate(labels):
        r, q = rng.integers(1, 7, size=2)
        if c == 0:
            imgs[i, 0, r, 1:7] = 1.0
        elif c == 1:
            imgs[i, 0, 1:7, q] = 1.0
        elif c == 2:
            r, q = rng.integers(0, 6, size=2)
            imgs[i, 0, r:r + 3, q:q + 3] = 1.0
        else:
            k = rng.integers(-2, 3)
            idx = np.arange(8)
            ok = (idx + k >= 0) & (idx + k < 8)
            imgs[i, 0, idx[ok], idx[ok] + k] = 1.0
    imgs += 0.35 * rng.standard_normal(imgs.shape).astype(np.float32)
    return torch.from_numpy(imgs), torch.from_numpy(labels).long()


rng = np.random.default_rng(4)
X_train, y_train = make_shapes(16000, rng)
X_test, y_test = make_shapes(2000, rng)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 4 * 4, 4)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def batches():
    if FIXED:
        yield from DataLoader(TensorDataset(X_train, y_train), batch_size=64, shuffle=True)
    else:
        image_loader = DataLoader(X_train, batch_size=64, shuffle=True)
        label_loader = DataLoader(y_train, batch_size=64, shuffle=True)
        yield from zip(image_loader, label_loader)


model = SmallCNN()
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
EPOCHS = 2

losses, prev_grad, cosines = [], None, []
for epoch in range(EPOCHS):
    for xb, yb in batches():
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        if PROBE and len(losses) < 100:
            g = torch.cat([p.grad.flatten() for p in model.parameters()])
            if prev_grad is not None:
                cosines.append(F.cosine_similarity(g, prev_grad, dim=0).item())
            prev_grad = g.clone()
        opt.step()
        losses.append(loss.item())
    print(f"epoch {epoch}  mean loss {np.mean(losses[-250:]):.4f}")

model.eval()
with torch.no_grad():
    test_acc = (model(X_test).argmax(1) == y_test).float().mean().item()

if PROBE:
    # consecutive mini-batch gradients over the first 100 steps: do they agree?
    print(f"PROBE consecutive_grad_cosine={np.mean(cosines):.3f}")

tail = losses[-len(losses) // 20:]
print(f"FINAL loss={np.mean(tail):.4f} test_acc={test_acc:.3f}")
