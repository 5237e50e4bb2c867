"""Handwritten-digit classification (sklearn 8x8 digits) with a small LeNet-style CNN
(two 3x3 conv layers with tanh, max-pool, tanh MLP head), Adam, cross-entropy, batch 64.

Adam is run with lr=0.04, far more than this network tolerates: every parameter moves by
roughly the learning rate on each step, so the weights overshoot the valley floor and
swing back, and the training loss rises and falls in waves of tens of steps for the whole
run instead of settling.  FIXED=1 uses lr=0.002.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
labels = torch.tensor(digits.target)
perm = torch.randperm(len(labels))
train_idx, test_idx = perm[:1500], perm[1500:]

net = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.Tanh(),
    nn.Conv2d(8, 16, 3, padding=1), nn.Tanh(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(16 * 4 * 4, 64), nn.Tanh(),
    nn.Linear(64, 10),
)
LR = 0.002 if FIXED else 0.04
opt = torch.optim.Adam(net.parameters(), lr=LR)

STEPS = 700
loss_log = []
for step in range(STEPS):
    b = train_idx[torch.randint(0, len(train_idx), (64,))]
    loss = F.cross_entropy(net(images[b]), labels[b])
    opt.zero_grad()
    loss.backward()
    opt.step()
    loss_log.append(loss.item())
    if step % 100 == 99:
        print(f"step {step + 1}  loss(avg 100) {np.mean(loss_log[-100:]):.4f}")

if PROBE:
    # Adam's stability margin (Cohen et al. 2022): largest eigenvalue of the
    # preconditioned Hessian P^-1/2 H P^-1/2 (P = sqrt(v_hat) + eps) times lr / 38;
    # above 1 the steps overshoot along that direction.
    params = list(net.parameters())
    b = train_idx[:512]
    grads = torch.autograd.grad(F.cross_entropy(net(images[b]), labels[b]), params,
                                create_graph=True)
    t = opt.state[params[0]]["step"]
    t = float(t)
    pinv = [1.0 / (torch.sqrt(opt.state[q]["exp_avg_sq"] / (1 - 0.999 ** t)) + 1e-8).sqrt()
            for q in params]
    u = [torch.randn_like(q) for q in params]
    lam = 0.0
    for _ in range(25):
        n = torch.sqrt(sum((x * x).sum() for x in u))
        u = [x / n for x in u]
        hv = torch.autograd.grad(grads, params, grad_outputs=[x * c for x, c in zip(u, pinv)],
                                 retain_graph=True)
        hv = [h * c for h, c in zip(hv, pinv)]
        lam = sum((h * x).sum() for h, x in zip(hv, u)).item()
        u = [h.detach() for h in hv]
    print(f"PROBE lr_times_precond_sharpness_over_38={LR * lam / 38:.3g}")

with torch.no_grad():
    test_acc = (net(images[test_idx]).argmax(1) == labels[test_idx]).float().mean().item()
k = STEPS // 20
print(f"FINAL loss={np.mean(loss_log[-k:]):.4f} test_acc={test_acc:.3f}")
