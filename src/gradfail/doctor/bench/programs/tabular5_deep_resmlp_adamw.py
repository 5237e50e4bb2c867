"""Five-class synthetic tabular classification with a deep residual ReLU MLP.
Model: input projection, 10 pre-activation residual blocks x + W2 relu(W1 relu(x)) of width 48,
linear head; He (Kaiming) init, last layer of each branch zero-initialised (Goyal et al.).
AdamW + weight decay, OneCycleLR, clip_grad_norm_ at 1.0, DataLoader, label-smoothed CE.
Healthy: this run trains well. FIXED=1 changes nothing.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(19)
np.random.seed(19)
FIXED = os.environ.get("FIXED") == "1"  # healthy program: nothing to fix
PROBE = os.environ.get("PROBE") == "1"

X, y = make_classification(n_samples=5000, n_features=24, n_informative=14,
                           n_redundant=4, n_classes=5, n_clusters_per_class=2,
                           class_sep=1.3, random_state=19)
X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
X, y = torch.from_numpy(X), torch.from_numpy(y)
train_ds = TensorDataset(X[:4000], y[:4000])
X_test, y_test = X[4000:], y[4000:]
loader = DataLoader(train_ds, batch_size=128, shuffle=True, drop_last=True)


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x):
        return x + self.fc2(F.relu(self.fc1(F.relu(x))))


class ResMLP(nn.Module):
    def __init__(self, d_in, width=48, blocks=10, n_cls=5):
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        nn.init.kaiming_normal_(self.inp.weight, nonlinearity="relu")
        self.blocks = nn.Sequential(*[Block(width) for _ in range(blocks)])
        self.head = nn.Linear(width, n_cls)

    def forward(self, x):
        return self.head(F.relu(self.blocks(self.inp(x))))


model = ResMLP(24)
epochs = 10
total = epochs * len(loader)
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=total)

losses = []
for epoch in range(epochs):
    model.train()
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb, label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())

model.eval()
with torch.no_grad():
    test_acc = (model(X_test).argmax(1) == y_test).float().mean().item()
if PROBE:
    print(f"PROBE test_acc_over_chance={test_acc / 0.2:.2f}")
print(f"FINAL loss={np.mean(losses[-total // 20:]):.4f} test_acc={test_acc:.3f}")
