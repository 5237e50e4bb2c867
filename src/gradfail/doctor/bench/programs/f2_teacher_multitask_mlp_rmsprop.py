"""Two related targets from one synthetic teacher: a regression value and a binary flag.

Model: shared trunk (16 -> 64 -> 64, tanh) with two heads, a regression head (MSE) and a
classification head (BCE-with-logits); the two losses are summed. Optimizer: RMSprop
(lr 0.03, alpha 0.99), full batch of 2000 examples.
Cause: the RMSprop step is far too large for this problem: as gradients shrink near a minimum
the running squared-gradient average decays, the normalised step grows until it overshoots, the
loss climbs for several steps until the large gradients refill the average, then falls again:
waves instead of settling. FIXED=1 lowers the lr to 0.001.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
np.random.seed(0)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

LR = 0.001 if FIXED else 0.03

D = 16
a, b, c = torch.randn(D) / D ** 0.5, torch.randn(D) / D ** 0.5, torch.randn(D) / D ** 0.5


def teacher(n):
    x = torch.randn(n, D)
    y_reg = torch.sin(2 * x @ a) + 0.5 * (x @ b) + 0.1 * torch.randn(n)
    y_cls = ((x @ c) + 0.8 * (x @ a) ** 2 > 0.8).float()
    return x, y_reg, y_cls


Xtr, rtr, ctr = teacher(2000)
Xte, rte, cte = teacher(1000)


class MultiTaskNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(D, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh())
        self.reg_head = nn.Linear(64, 1)
        self.cls_head = nn.Linear(64, 1)

    def forward(self, x):
        h = self.trunk(x)
        return self.reg_head(h).squeeze(-1), self.cls_head(h).squeeze(-1)


model = MultiTaskNet()
opt = torch.optim.RMSprop(model.parameters(), lr=LR, alpha=0.99)

STEPS = 700
losses = []
for step in range(STEPS):
    reg, logit = model(Xtr)
    loss = F.mse_loss(reg, rtr) + F.binary_cross_entropy_with_logits(logit, ctr)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step % 200 == 0:
        print(f"step {step} loss {loss.item():.4f}")

with torch.no_grad():
    reg, logit = model(Xte)
    r2 = 1 - ((reg - rte) ** 2).mean().item() / rte.var().item()
    acc = ((logit > 0).float() == cte).float().mean().item()

if PROBE:
    # a settling full-batch run stays close to its best loss so far; waves climb far above it.
    # mean relative excess of the loss over the running minimum, second half of the run
    arr = np.array(losses)
    best = np.minimum.accumulate(arr)
    excess = float(np.mean(arr[STEPS // 2:] / best[STEPS // 2:] - 1.0))
    print(f"PROBE loss_excess_over_running_min={excess:.3f}")

tail = max(1, STEPS // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} r2={r2:.3f} test_acc={acc:.3f}")
