"""Binary classification of a synthetic tabular set (make_classification, 24k rows, 30
features) with a small residual MLP (LayerNorm blocks), SGD + Nesterov momentum,
mini-batches of 64 from a DataLoader, cosine learning-rate schedule.

Failure: after the train/test split the script "shuffles the training set" but permutes
only the label tensor, so every training label is detached from its input; with 19k rows
the net cannot memorise them in the run, the loss stays at log 2 and the gradient carries
no information about the real target. FIXED=1 removes the label-only permutation.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(1)
np.random.seed(1)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

X, y = make_classification(n_samples=24000, n_features=30, n_informative=12,
                           n_redundant=4, n_clusters_per_class=4, class_sep=1.2,
                           flip_y=0.02, random_state=7)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32)

n_train = 19000
X_train, X_test = X[:n_train], X[n_train:]
y_train, y_test = y[:n_train], y[n_train:]
mu, sd = X_train.mean(0), X_train.std(0)
X_train, X_test = (X_train - mu) / sd, (X_test - mu) / sd

if not FIXED:
    # shuffle the training data before batching
    y_train = y_train[torch.randperm(n_train)]


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)

    def forward(self, h):
        return h + self.fc2(F.relu(self.fc1(self.norm(h))))


class ResMLP(nn.Module):
    def __init__(self, d_in, d=48, n_blocks=3):
        super().__init__()
        self.inp = nn.Linear(d_in, d)
        self.blocks = nn.Sequential(*[Block(d) for _ in range(n_blocks)])
        self.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 1))

    def forward(self, x):
        return self.out(self.blocks(self.inp(x))).squeeze(-1)


model = ResMLP(30, d=32, n_blocks=2)
loader = DataLoader(TensorDataset(X_train, y_train), batch_size=64, shuffle=True,
                    drop_last=True)
EPOCHS = 3
total_steps = EPOCHS * len(loader)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                      weight_decay=1e-4)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)


def full_grad_norm(labels):
    model.zero_grad()
    F.binary_cross_entropy_with_logits(model(X_train), labels).backward()
    norm = model.inp.weight.grad.norm().item()
    model.zero_grad()
    return norm


if PROBE:
    # full-batch gradient norm of the input layer with the training labels, relative to
    # the same with the labels randomly re-permuted (1.0 = no usable signal in the labels)
    gen = torch.Generator().manual_seed(0)
    g_real = full_grad_norm(y_train)
    g_null = sum(full_grad_norm(y_train[torch.randperm(n_train, generator=gen)])
                 for _ in range(5)) / 5
    print(f"PROBE grad_norm_vs_permuted_labels={g_real / g_null:.2f}")


losses = []
for epoch in range(EPOCHS):
    model.train()
    for xb, yb in loader:
        loss = F.binary_cross_entropy_with_logits(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    print(f"epoch {epoch}  train loss {np.mean(losses[-len(loader):]):.4f}")

model.eval()
with torch.no_grad():
    test_acc = ((model(X_test) > 0).float() == y_test).float().mean().item()

tail = losses[-len(losses) // 20:]
print(f"FINAL loss={np.mean(tail):.4f} test_acc={test_acc:.3f}")
