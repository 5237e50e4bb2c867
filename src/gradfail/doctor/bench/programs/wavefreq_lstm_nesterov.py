"""Classify noisy synthetic waveforms (24 time steps) into 5 frequency bands
with a one-layer LSTM (hidden 32) and a linear head; SGD with Nesterov
momentum 0.9, lr 0.1, StepLR halving every 200 steps, batches of 64.

Cause of failure: forward() returns F.softmax(...) and the loss is F.nll_loss,
which expects log-probabilities; on probabilities it just maximises p(correct)
with a gradient scaled by that (small) probability, so learning crawls.
FIXED=1 returns F.log_softmax(...) instead.
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(11)
np.random.seed(11)
FIXED = os.environ.get("FIXED") == "1"
T, N_CLASSES = 24, 5


def waveforms(n):
    cls = torch.randint(0, N_CLASSES, (n,))
    freq = 0.2 + 0.25 * cls.float() + 0.05 * torch.rand(n)
    phase = 2 * math.pi * torch.rand(n, 1)
    t = torch.arange(T).float()
    x = torch.sin(freq[:, None] * t[None, :] + phase) + 0.4 * torch.randn(n, T)
    return x.unsqueeze(-1), cls


class WaveNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(1, 32, batch_first=True)
        self.fc = nn.Linear(32, N_CLASSES)

    def logits(self, x):
        h, _ = self.lstm(x)
        return self.fc(h[:, -1])

    def forward(self, x):
        z = self.logits(x)
        return F.log_softmax(z, dim=1) if FIXED else F.softmax(z, dim=1)


net = WaveNet()
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=200, gamma=0.5)
x_test, y_test = waveforms(1000)

running = []
for step in range(600):
    xb, yb = waveforms(64)
    opt.zero_grad()
    loss = F.nll_loss(net(xb), yb)
    loss.backward()
    opt.step()
    sched.step()
    running.append(loss.item())
    if (step + 1) % 150 == 0:
        print(f"step {step + 1}  loss {np.mean(running[-150:]):+.4f}")

if os.environ.get("PROBE") == "1":
    # gradient the loss sends to the logits, relative to what cross-entropy would send
    z = net.logits(x_test).detach().requires_grad_(True)
    out = F.log_softmax(z, 1) if FIXED else F.softmax(z, 1)
    g_used, = torch.autograd.grad(F.nll_loss(out, y_test), z)
    g_ce, = torch.autograd.grad(F.cross_entropy(z, y_test), z)
    print(f"PROBE logit_grad_to_cross_entropy_grad_ratio={(g_used.norm() / g_ce.norm()).item():.3f}")

with torch.no_grad():
    test_acc = (net(x_test).argmax(1) == y_test).float().mean().item()
tail = max(1, len(running) // 20)
print(f"FINAL loss={np.mean(running[-tail:]):.4f} test_acc={test_acc:.3f}")
