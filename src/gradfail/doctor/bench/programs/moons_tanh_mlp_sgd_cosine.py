"""Two-moons classification with a tanh MLP trained by full-batch SGD at a high learning rate.

Data: sklearn make_moons (1200 points, noise 0.25), standardised, 1000 train / 200 test.
Model: MLP 2-64-64-2 with tanh written with a custom forward, cross-entropy, full-batch
plain SGD with a cosine-annealed learning rate starting high (lr 0.5, near but below
the stability limit 2/lambda_max of the loss curvature), 1000 steps.
Healthy: the loss falls steadily to a low level and test accuracy is high.
FIXED=1 changes nothing.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_moons

torch.manual_seed(17)
np.random.seed(17)
FIXED = os.environ.get("FIXED") == "1"   # healthy program: nothing to fix
PROBE = os.environ.get("PROBE") == "1"

X, y = make_moons(n_samples=1200, noise=0.25, random_state=17)
X = (X - X.mean(0)) / X.std(0)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y)
Xtr, ytr, Xte, yte = X[:1000], y[:1000], X[1000:], y[1000:]


class MoonNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(2, 64)
        self.l2 = nn.Linear(64, 64)
        self.l3 = nn.Linear(64, 2)

    def forward(self, x):
        h = torch.tanh(self.l1(x))
        h = torch.tanh(self.l2(h))
        return self.l3(h)


net = MoonNet()
steps = 1000
lr0 = 0.5
opt = torch.optim.SGD(net.parameters(), lr=lr0)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=0.05)


losses = []
for step in range(steps):
    opt.zero_grad()
    loss = F.cross_entropy(net(Xtr), ytr)
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
    if step % 200 == 0:
        print(f"step {step:4d} loss {loss.item():.4f} lr {sched.get_last_lr()[0]:.3f}")

with torch.no_grad():
    test_acc = (net(Xte).argmax(1) == yte).float().mean().item()
if PROBE:
    print(f"PROBE test_acc_over_chance={test_acc / 0.5:.3g}")
tail = losses[-steps // 20:]
print(f"FINAL loss={np.mean(tail):.4f} test_acc={test_acc:.4f}")
