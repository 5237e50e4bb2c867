"""8x8 digits with a 6-layer BatchNorm ConvNet trained at a high learning rate (healthy run).

Model: six Conv2d(3x3)-BatchNorm2d-ReLU blocks (16 channels, Kaiming init), global average
pooling, linear classifier. Training: SGD momentum 0.9 with weight decay 5e-4 and peak lr 0.4,
reached by a 60-step linear warm-up and followed by cosine decay (one LambdaLR), cross-entropy
with label smoothing 0.05, shuffled DataLoader batches of 64, 440 steps. The learning rate is
high but BatchNorm and the warm-up keep it stable.
Healthy: FIXED=1 changes nothing.
"""
import os
import math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(9)
np.random.seed(9)
PROBE = os.environ.get("PROBE") == "1"

digits = load_digits()
X = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
X = (X - X.mean()) / X.std()
y = torch.tensor(digits.target, dtype=torch.long)
perm = torch.randperm(len(X))
tr, te = perm[:1400], perm[1400:]
loader = DataLoader(TensorDataset(X[tr], y[tr]), batch_size=64, shuffle=True, drop_last=True)


def block(c_in, c_out):
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


model = nn.Sequential(block(1, 16), *[block(16, 16) for _ in range(5)],
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

total, warmup, peak = 440, 60, 0.4
opt = torch.optim.SGD(model.parameters(), lr=peak, momentum=0.9, weight_decay=5e-4)


def lr_factor(step):
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)

losses, step = [], 0
model.train()
while step < total:
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb, label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        step += 1
        if step % 110 == 0:
            print(f"step {step} lr={sched.get_last_lr()[0]:.3f} loss={np.mean(losses[-110:]):.4f}")
        if step == total:
            break

model.eval()
with torch.no_grad():
    test_acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    if PROBE:
        train_acc = (model(X[tr]).argmax(1) == y[tr]).float().mean().item()
        print(f"PROBE train_acc_over_chance={train_acc / 0.1:.3g}")
tail = max(1, total // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_acc={test_acc:.3f}")
