"""Handwritten digits (sklearn 8x8) with a small two-conv CNN, Adam lr 3e-3,
batch 64, plus an exponential-moving-average copy of the weights for evaluation.

Cause of failure: the loop calls zero_grad() on the EMA copy instead of the
model being trained, so the model's .grad is never cleared; Adam is fed the
running sum of every gradient seen so far and training drifts instead of
converging. FIXED=1 clears the trained model's gradients each step.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(1)
np.random.seed(1)

digits = load_digits()
images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
labels = torch.tensor(digits.target, dtype=torch.long)
perm = torch.randperm(len(labels))
images, labels = images[perm], labels[perm]
x_train, y_train = images[:1500], labels[:1500]
x_test, y_test = images[1500:], labels[1500:]


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


model = SmallCNN()
ema_model = SmallCNN()
ema_model.load_state_dict(model.state_dict())
for p in ema_model.parameters():
    p.requires_grad_(False)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)


@torch.no_grad()
def update_ema(decay=0.98):
    for pe, pm in zip(ema_model.parameters(), model.parameters()):
        pe.mul_(decay).add_(pm, alpha=1 - decay)


history = []
batch_size = 64
for epoch in range(20):
    order = torch.randperm(len(x_train))
    model.train()
    for i in range(0, len(order) - batch_size + 1, batch_size):
        idx = order[i:i + batch_size]
        if os.environ.get("FIXED") == "1":
            model.zero_grad()
        else:
            ema_model.zero_grad()
        logits = model(x_train[idx])
        loss = F.cross_entropy(logits, y_train[idx])
        loss.backward()
        opt.step()
        update_ema()
        history.append(loss.item())
    if (epoch + 1) % 4 == 0:
        print(f"epoch {epoch + 1}: train loss {np.mean(history[-23:]):.3f}")

if os.environ.get("PROBE") == "1":
    acc_grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    fresh = torch.autograd.grad(F.cross_entropy(model(x_train[idx]), y_train[idx]),
                                list(model.parameters()))
    fresh = torch.cat([g.reshape(-1) for g in fresh])
    print(f"PROBE stored_to_fresh_grad_norm_ratio={(acc_grad.norm() / fresh.norm()).item():.3g}")

with torch.no_grad():
    test_acc = (ema_model(x_test).argmax(1) == y_test).float().mean().item()
n_tail = max(1, len(history) // 20)
print(f"FINAL loss={np.mean(history[-n_tail:]):.4f} test_acc={test_acc:.3f}")
