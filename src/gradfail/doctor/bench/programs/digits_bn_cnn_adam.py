"""sklearn digits (8x8 images, standardised) classified by a small CNN:
Conv-BatchNorm-ReLU x2 with max-pooling, dropout 0.25 and a linear layer.
Adam lr 2e-3, batches of 50 from a shuffled DataLoader, CrossEntropyLoss,
11 epochs, evaluation on a held-out split.
Healthy: trains to high test accuracy; FIXED=1 changes nothing.
"""
import os

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(21)
np.random.seed(21)

digits = load_digits()
imgs = digits.images.astype(np.float32)
imgs = (imgs - imgs.mean()) / imgs.std()
order = np.random.permutation(len(imgs))
tr, te = order[:1500], order[1500:]
x_tr = torch.from_numpy(imgs[tr]).unsqueeze(1)
y_tr = torch.from_numpy(digits.target[tr])
x_te = torch.from_numpy(imgs[te]).unsqueeze(1)
y_te = torch.from_numpy(digits.target[te])
loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=50, shuffle=True)

net = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
    nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(), nn.Dropout(0.25),
    nn.Linear(16 * 4 * 4, 10),
)
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
criterion = nn.CrossEntropyLoss()

train_losses = []
for epoch in range(11):
    net.train()
    for xb, yb in loader:
        opt.zero_grad()
        loss = criterion(net(xb), yb)
        loss.backward()
        opt.step()
        train_losses.append(loss.item())
    if epoch % 5 == 4:
        print(f"epoch {epoch + 1:2d} train loss {np.mean(train_losses[-30:]):.4f}")

net.eval()
with torch.no_grad():
    test_acc = (net(x_te).argmax(1) == y_te).float().mean().item()
if os.environ.get("PROBE") == "1":
    print(f"PROBE test_acc_over_chance={test_acc / 0.1:.2f}")
m = max(1, len(train_losses) // 20)
print(f"FINAL loss={np.mean(train_losses[-m:]):.4f} test_acc={test_acc:.3f}")
