"""Wine cultivar classification (sklearn wine, 13 features) with a regularised MLP.

Data: 178 wines, features standardised with training statistics, 140 train / 38 test.
Model: nn.Sequential 13-64-32-3 with ReLU and Dropout(0.3), cross-entropy, RMSprop
(lr 1e-3, weight decay 1e-3) on shuffled DataLoader batches of 16, 50 epochs (450 steps).
Healthy: the training loss falls to a low (dropout-noisy) level and test accuracy is high.
FIXED=1 changes nothing.
"""
import os
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_wine

torch.manual_seed(20)
np.random.seed(20)
FIXED = os.environ.get("FIXED") == "1"   # healthy program; the flag is ignored
PROBE = os.environ.get("PROBE") == "1"

wine = load_wine()
perm = np.random.permutation(len(wine.target))
tr, te = perm[:140], perm[140:]
mu, sd = wine.data[tr].mean(0), wine.data[tr].std(0)
feats = (wine.data - mu) / sd
Xtr = torch.tensor(feats[tr], dtype=torch.float32)
ytr = torch.tensor(wine.target[tr])
Xte = torch.tensor(feats[te], dtype=torch.float32)
yte = torch.tensor(wine.target[te])
loader = DataLoader(TensorDataset(Xtr, ytr), batch_size=16, shuffle=True)

clf = nn.Sequential(
    nn.Linear(13, 64), nn.ReLU(), nn.Dropout(0.3),
    nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3),
    nn.Linear(32, 3),
)
opt = torch.optim.RMSprop(clf.parameters(), lr=1e-3, weight_decay=1e-3)
criterion = nn.CrossEntropyLoss()

history = []
for epoch in range(50):
    clf.train()
    for xb, yb in loader:
        opt.zero_grad()
        loss = criterion(clf(xb), yb)
        loss.backward()
        opt.step()
        history.append(loss.item())
    if epoch % 10 == 0:
        print(f"epoch {epoch:2d} loss {np.mean(history[-9:]):.4f}")

clf.eval()
with torch.no_grad():
    test_acc = (clf(Xte).argmax(1) == yte).float().mean().item()
if PROBE:
    print(f"PROBE test_acc_over_chance={test_acc / (1 / 3):.3g}")
tail = history[-len(history) // 20:]
print(f"FINAL loss={np.mean(tail):.4f} test_acc={test_acc:.4f}")
