"""Three-class softmax regression on a synthetic tabular problem.

Data: make_classification (20 standardised features, 3 overlapping classes, 5% label
noise). Model: one nn.Linear, cross-entropy, full-batch plain SGD, 600 steps.
Cause of failure: the learning rate (20) is far above the stability limit 2/lambda_max of
the loss curvature, so every step overshoots along the sharpest direction: the loss jumps
up and down and stays well above what the model can reach (finite throughout).
FIXED=1 lowers the learning rate to 0.5.
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
probe_gen = torch.Generator().manual_seed(123)  # keeps the probe off the training RNG

X, y = make_classification(n_samples=1500, n_features=20, n_informative=8, n_redundant=4,
                           n_classes=3, n_clusters_per_class=1, class_sep=1.0,
                           flip_y=0.05, random_state=6)
X = (X - X.mean(0)) / X.std(0)
Xt = torch.tensor(X, dtype=torch.float32)
yt = torch.tensor(y)

clf = nn.Linear(20, 3)
lr = 0.5 if FIXED else 20.0
opt = torch.optim.SGD(clf.parameters(), lr=lr)

def sharpness(model, iters=30):
    """Largest Hessian eigenvalue of the full-batch loss (power iteration on HVPs)."""
    params = list(model.parameters())
    loss = F.cross_entropy(model(Xt), yt)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    v = [torch.randn(p.shape, generator=probe_gen) for p in params]
    lam = 0.0
    for _ in range(iters):
        norm = torch.sqrt(sum((u * u).sum() for u in v))
        v = [u / norm for u in v]
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        lam = sum((a * b).sum() for a, b in zip(hv, v)).item()
        v = [h.detach() for h in hv]
    return lam

steps = 600
losses = []
sharp = []
for step in range(steps):
    if PROBE and step % 100 == 0:
        sharp.append(sharpness(clf))
    opt.zero_grad()
    loss = F.cross_entropy(clf(Xt), yt)
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step % 100 == 0:
        print(f"step {step} loss {loss.item():.4f}")

with torch.no_grad():
    acc = (clf(Xt).argmax(1) == yt).float().mean().item()
if PROBE:
    print(f"PROBE lr_times_sharpness={lr * max(sharp):.3g}")
tail = losses[-steps // 20:]
print(f"FINAL loss={np.mean(tail):.4f} train_acc={acc:.4f}")
