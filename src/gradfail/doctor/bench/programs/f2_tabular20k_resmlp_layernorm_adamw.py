"""Four-class synthetic tabular classification (20k rows, 20 features) with a
residual MLP (LayerNorm + GELU blocks), AdamW and cosine annealing, mini-batches
from DataLoaders.
Cause of failure: features and labels are served by two *separate* shuffled
DataLoaders that are zipped together, so each batch pairs inputs with labels
of other rows; the labels carry no information about the inputs the model sees
and the loss stays at chance (log 4).
FIXED=1: one DataLoader over TensorDataset(X, y), so rows keep their labels.
"""
import os
import math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import make_classification

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

X, y = make_classification(n_samples=20000, n_features=20, n_informative=12,
                           n_redundant=4, n_classes=4, n_clusters_per_class=2,
                           class_sep=1.5, random_state=0)
X = (X - X.mean(0)) / X.std(0)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.long)
X_train, y_train = X[:16000], y[:16000]
X_test, y_test = X[16000:], y[16000:]


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)

    def forward(self, h):
        return h + self.fc2(F.gelu(self.fc1(self.norm(h))))


class ResMLP(nn.Module):
    def __init__(self, d_in, d, n_out, n_blocks=2):
        super().__init__()
        self.inp = nn.Linear(d_in, d)
        self.blocks = nn.ModuleList([Block(d) for _ in range(n_blocks)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, n_out)

    def forward(self, x):
        h = self.inp(x)
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h))


model = ResMLP(20, 48, 4)
epochs, bs = 5, 128
steps_per_epoch = len(X_train) // bs
total = epochs * steps_per_epoch
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)

if FIXED:
    train_loader = DataLoader(TensorDataset(X_train, y_train), batch_size=bs,
                              shuffle=True, drop_last=True)

    def batches():
        return iter(train_loader)
else:
    x_loader = DataLoader(X_train, batch_size=bs, shuffle=True, drop_last=True)
    y_loader = DataLoader(y_train, batch_size=bs, shuffle=True, drop_last=True)

    def batches():
        return zip(x_loader, y_loader)


def grad_coherence(xb, yb):
    # ||mean of per-sample gradients|| / mean of per-sample gradient norms
    grads = []
    for i in range(len(xb)):
        model.zero_grad()
        F.cross_entropy(model(xb[i:i + 1]), yb[i:i + 1]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    G = torch.stack(grads)
    model.zero_grad()
    return (G.mean(0).norm() / G.norm(dim=1).mean()).item()


losses = []
step = 0
probe_vals = []
for epoch in range(epochs):
    model.train()
    for xb, yb in batches():
        if PROBE and step in (100, 300, 500):
            probe_vals.append(grad_coherence(xb[:64], yb[:64]))
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        step += 1
    print(f"epoch {epoch} loss {np.mean(losses[-steps_per_epoch:]):.4f}")

model.eval()
with torch.no_grad():
    test_acc = (model(X_test).argmax(1) == y_test).float().mean().item()
if PROBE:
    print(f"PROBE grad_coherence={np.mean(probe_vals):.3f}")
k = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_acc={test_acc:.4f}")
