"""Three-class synthetic tabular classification with a hardtanh MLP.
Model: 20-32-32-3 with F.hardtanh in a custom forward; hidden weights drawn from N(0, 3^2) by a
hand-written init. Plain SGD + weight decay, StepLR, mini-batches of 100, cross-entropy.
Cause of failure: the weight scale makes pre-activations ~10-20x wider than hardtanh's linear
range [-1, 1], so nearly every unit is clipped (derivative exactly 0) and the hidden layers see
almost no gradient. Features are standardised. FIXED=1: Xavier (Glorot) uniform init.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_classification

torch.manual_seed(6)
np.random.seed(6)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

X, y = make_classification(n_samples=3000, n_features=20, n_informative=8,
                           n_redundant=4, n_classes=3, n_clusters_per_class=2,
                           class_sep=1.2, flip_y=0.01, random_state=6)
X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
X, y = torch.from_numpy(X), torch.from_numpy(y)
perm = torch.randperm(len(X))
train_idx, test_idx = perm[:2400], perm[2400:]


class HardTanhNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(20, 32)
        self.l2 = nn.Linear(32, 32)
        self.l3 = nn.Linear(32, 3)
        nn.init.xavier_uniform_(self.l3.weight)
        nn.init.zeros_(self.l3.bias)
        for lin in (self.l1, self.l2):
            if FIXED:
                nn.init.xavier_uniform_(lin.weight)
            else:
                with torch.no_grad():
                    lin.weight.normal_(0.0, 3.0)
            nn.init.zeros_(lin.bias)

    def forward(self, x, return_hidden=False):
        z1 = self.l1(x)
        h1 = F.hardtanh(z1)
        z2 = self.l2(h1)
        h2 = F.hardtanh(z2)
        out = self.l3(h2)
        return (out, z1, z2) if return_hidden else out


net = HardTanhNet()
opt = torch.optim.SGD(net.parameters(), lr=0.05, weight_decay=1e-4)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)

bs, epochs = 100, 50
Xtr, ytr = X[train_idx], y[train_idx]
losses = []
for epoch in range(epochs):
    order = torch.randperm(len(Xtr))
    for i in range(0, len(Xtr), bs):
        b = order[i:i + bs]
        loss = F.cross_entropy(net(Xtr[b]), ytr[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sched.step()

with torch.no_grad():
    acc = (net(X[test_idx]).argmax(1) == y[test_idx]).float().mean().item()
    if PROBE:
        _, z1, z2 = net(Xtr, return_hidden=True)
        clipped = torch.cat([(z1.abs() > 1).flatten(), (z2.abs() > 1).flatten()]).float().mean()
        print(f"PROBE clipped_fraction={clipped.item():.3f}")
print(f"FINAL loss={np.mean(losses[-len(losses) // 20:]):.4f} test_acc={acc:.3f}")
