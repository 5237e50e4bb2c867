"""Five-class synthetic tabular classification (make_classification, 20 standardised features).

Model: nn.Sequential MLP 20-128-128-5 with ReLU; Adam with StepLR (halved every 8 epochs),
DataLoader mini-batches of 64, cross-entropy.
Cause: the initial learning rate (0.1) is far too high for Adam: the first few huge updates
push most second-layer ReLUs to negative pre-activations on every input, they output zero and
receive zero gradient from then on, so the net is left with a handful of live units and
underfits. FIXED=1 starts the schedule at a normal learning rate (1e-3).
"""
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

X, y = make_classification(n_samples=4000, n_features=20, n_informative=12, n_classes=5,
                           n_clusters_per_class=2, class_sep=1.5, random_state=0)
X = (X - X.mean(0)) / X.std(0)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.long)
X_train, y_train, X_test, y_test = X[:3200], y[:3200], X[3200:], y[3200:]
loader = DataLoader(TensorDataset(X_train, y_train), batch_size=64, shuffle=True)

model = nn.Sequential(
    nn.Linear(20, 128), nn.ReLU(),
    nn.Linear(128, 128), nn.ReLU(),
    nn.Linear(128, 5),
)

epochs = 24
lr = 1e-3 if FIXED else 0.1
optimizer = torch.optim.Adam(model.parameters(), lr=lr)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=8, gamma=0.5)
criterion = nn.CrossEntropyLoss()

losses = []
for epoch in range(epochs):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    scheduler.step()
    if epoch % 8 == 0:
        print(f"epoch {epoch:2d} train loss {np.mean(losses[-len(loader):]):.4f}")

model.eval()
with torch.no_grad():
    test_acc = (model(X_test).argmax(1) == y_test).float().mean().item()
    if PROBE:
        h2 = model[:4](X_train)                      # output of the second ReLU
        dead = (h2.max(dim=0).values <= 0).float().mean().item()
        print(f"PROBE dead_fraction_layer2={dead:.3f}")

k = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_acc={test_acc:.3f}")
