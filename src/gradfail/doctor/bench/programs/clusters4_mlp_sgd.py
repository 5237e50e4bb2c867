"""Four-class Gaussian-cluster classification with a 3-layer ReLU MLP.

Trained with plain mini-batch SGD (lr 0.05, batch 64) over a DataLoader.
Cause of failure: the training loop never clears the gradients, so every
backward() adds onto .grad and each update follows the running sum of all past
gradients instead of the current one; the loss dips and then swings wildly.
FIXED=1 calls optimizer.zero_grad() before every backward pass.
"""
import os
import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import make_classification

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

X, y = make_classification(n_samples=3000, n_features=20, n_informative=12,
                           n_redundant=4, n_classes=4, n_clusters_per_class=2,
                           class_sep=1.5, random_state=0)
X = (X - X.mean(0)) / X.std(0)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.long)
Xtr, ytr, Xte, yte = X[:2400], y[:2400], X[2400:], y[2400:]

loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(Xtr, ytr),
                                     batch_size=64, shuffle=True)

model = nn.Sequential(
    nn.Linear(20, 64), nn.ReLU(),
    nn.Linear(64, 64), nn.ReLU(),
    nn.Linear(64, 4),
)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

epochs = 20
losses = []
for epoch in range(epochs):
    for xb, yb in loader:
        if FIXED:
            optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    if epoch % 5 == 4:
        print(f"epoch {epoch + 1:2d}  loss {np.mean(losses[-38:]):.4f}")

if PROBE:
    # compare the gradient the optimizer would use with a freshly computed one
    stored = torch.cat([p.grad.flatten() for p in model.parameters()])
    fresh = torch.autograd.grad(criterion(model(xb), yb), list(model.parameters()))
    fresh = torch.cat([g.flatten() for g in fresh])
    print(f"PROBE stored_to_fresh_grad_norm_ratio={(stored.norm() / fresh.norm()).item():.3g}")

with torch.no_grad():
    test_acc = (model(Xte).argmax(1) == yte).float().mean().item()
tail = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_acc={test_acc:.3f}")
