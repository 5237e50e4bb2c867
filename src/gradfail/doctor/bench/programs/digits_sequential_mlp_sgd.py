"""Handwritten digits (sklearn 8x8, pixels scaled to [0, 1]) classified by an
nn.Sequential MLP (64-128-64-10, ReLU) trained with plain SGD, lr 0.05,
batches of 32 from a shuffled DataLoader, nn.CrossEntropyLoss.

Cause of failure: the Sequential ends in nn.Softmax, and CrossEntropyLoss
applies log-softmax itself, so the loss sees probabilities as if they were
logits (softmax twice); the gradient reaching the network is squashed and
training crawls. FIXED=1 drops the final nn.Softmax so the loss gets logits.
"""
import os
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
np.random.seed(0)

X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(y))
train_idx, test_idx = perm[:1400], perm[1400:]
train_dl = DataLoader(TensorDataset(X[train_idx], y[train_idx]), batch_size=32, shuffle=True)

layers = [
    nn.Linear(64, 128), nn.ReLU(),
    nn.Linear(128, 64), nn.ReLU(),
    nn.Linear(64, 10),
]
if os.environ.get("FIXED") != "1":
    layers.append(nn.Softmax(dim=1))
net = nn.Sequential(*layers)

criterion = nn.CrossEntropyLoss()
optim = torch.optim.SGD(net.parameters(), lr=0.05)

losses = []
for epoch in range(12):
    net.train()
    for xb, yb in train_dl:
        optim.zero_grad()
        loss = criterion(net(xb), yb)
        loss.backward()
        optim.step()
        losses.append(loss.item())
    if epoch % 4 == 3:
        print(f"epoch {epoch + 1}: loss {np.mean(losses[-44:]):.3f}")

net.eval()
with torch.no_grad():
    if os.environ.get("PROBE") == "1":
        out = net(X[train_idx])
        looks_like_probs = ((out >= 0).all(1) & ((out.sum(1) - 1).abs() < 1e-4)).float().mean()
        print(f"PROBE loss_input_rows_that_are_probabilities={looks_like_probs.item():.2f}")
    test_acc = (net(X[test_idx]).argmax(1) == y[test_idx]).float().mean().item()
n = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-n:]):.4f} test_acc={test_acc:.3f}")
