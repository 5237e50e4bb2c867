"""Transfer between two synthetic tasks that share hidden features
(x ~ N(0, I) in 16-d; both labellings are read off the same tanh features).
Phase 1: pretrain an MLP backbone (16-64-32, ReLU) plus head on the large
8-class task A with Adam. Phase 2: freeze the backbone and fit a new head on the
small 3-class task B with SGD + momentum. Phase 3: unfreeze everything and
fine-tune on task B with AdamW at a small lr (1e-4).
Healthy: task B reaches high held-out accuracy; FIXED=1 changes nothing.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(13)
np.random.seed(13)

D_IN = 16
A = torch.randn(D_IN, 8) / D_IN ** 0.5
W_a = torch.randn(8, 8)
W_b = torch.randn(8, 3)


def make(n):
    x = torch.randn(n, D_IN)
    h = torch.tanh(2.0 * x @ A)
    return x, (h @ W_a).argmax(1), (h @ W_b).argmax(1)


xa, ya, _ = make(6000)               # plenty of task-A labels
xb, _, yb = make(400)                # few task-B labels
xb_test, _, yb_test = make(2000)

backbone = nn.Sequential(nn.Linear(D_IN, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
head_a = nn.Linear(32, 8)
history = []


def run_phase(params_opt, head, x, y, steps, bs):
    for _ in range(steps):
        idx = torch.randint(0, len(x), (bs,))
        loss = F.cross_entropy(head(backbone(x[idx])), y[idx])
        params_opt.zero_grad()
        loss.backward()
        params_opt.step()
        history.append(loss.item())


# phase 1: pretrain on task A
opt1 = torch.optim.Adam(list(backbone.parameters()) + list(head_a.parameters()), lr=2e-3)
run_phase(opt1, head_a, xa, ya, steps=700, bs=64)
print(f"phase 1 (task A)  loss {np.mean(history[-40:]):.4f}")

# phase 2: frozen backbone, new head for task B
for p in backbone.parameters():
    p.requires_grad_(False)
head_b = nn.Linear(32, 3)
opt2 = torch.optim.SGD(head_b.parameters(), lr=0.05, momentum=0.9)
run_phase(opt2, head_b, xb, yb, steps=200, bs=32)
print(f"phase 2 (head B)  loss {np.mean(history[-20:]):.4f}")

# phase 3: unfreeze, fine-tune everything gently
for p in backbone.parameters():
    p.requires_grad_(True)
opt3 = torch.optim.AdamW(list(backbone.parameters()) + list(head_b.parameters()),
                         lr=1e-4, weight_decay=1e-2)
run_phase(opt3, head_b, xb, yb, steps=150, bs=32)
print(f"phase 3 (all, B)  loss {np.mean(history[-15:]):.4f}")

with torch.no_grad():
    acc_b = (head_b(backbone(xb_test)).argmax(1) == yb_test).float().mean().item()
    chance = torch.bincount(yb_test).max().item() / len(yb_test)
if os.environ.get("PROBE") == "1":
    print(f"PROBE taskB_test_acc_minus_majority={acc_b - chance:.3f}")
n_tail = max(1, len(history) // 20)
print(f"FINAL loss={np.mean(history[-n_tail:]):.4f} test_acc={acc_b:.3f}")
