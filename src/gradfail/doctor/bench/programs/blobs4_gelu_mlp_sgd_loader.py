"""Four-class tabular classification (sklearn make_classification, 20 features, 4000
samples) with a GELU MLP (custom forward, F.gelu), SGD with momentum 0.9, cross-entropy,
DataLoader with batch 50.

The samples come sorted by class (as if read from per-class files) and the DataLoader is
built with shuffle=False, so each epoch shows 20 batches of class 0, then 20 of class 1,
and so on: consecutive stretches of batches pull the output layer in opposite directions,
the model keeps re-fitting whichever class it saw last, and the loss rises and falls in
waves with the period of an epoch.  FIXED=1 passes shuffle=True.
"""
import os
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

X, y = make_classification(n_samples=5000, n_features=20, n_informative=10, n_redundant=4,
                           n_classes=4, n_clusters_per_class=2, class_sep=1.5,
                           random_state=3)
X = (X - X.mean(0)) / X.std(0)
X_train, y_train, X_test, y_test = X[:4000], y[:4000], X[4000:], y[4000:]
order = np.argsort(y_train, kind="stable")          # grouped by class
X_train, y_train = X_train[order], y_train[order]

train_ds = TensorDataset(torch.tensor(X_train, dtype=torch.float32), torch.tensor(y_train))
loader = DataLoader(train_ds, batch_size=50, shuffle=FIXED)
Xt = torch.tensor(X_test, dtype=torch.float32)
yt = torch.tensor(y_test)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(20, 64)
        self.l2 = nn.Linear(64, 64)
        self.out = nn.Linear(64, 4)

    def forward(self, x):
        x = F.gelu(self.l1(x))
        x = F.gelu(self.l2(x))
        return self.out(x)


model = MLP()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

losses = []
purity = []
for epoch in range(12):          # 80 batches per epoch -> 960 steps
    for xb, yb in loader:
        if PROBE:
            purity.append(torch.bincount(yb, minlength=4).max().item() / len(yb))
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        acc = (model(Xt).argmax(1) == yt).float().mean().item()
    if epoch % 3 == 2:
        print(f"epoch {epoch + 1}  train loss {np.mean(losses[-80:]):.3f}  test acc {acc:.3f}")

if PROBE:
    # how single-class the mini-batches are (1.0 = every batch holds one class only)
    print(f"PROBE mean_batch_majority_class_fraction={np.mean(purity):.3f}")

k = len(losses) // 20
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_acc={acc:.3f}")
