"""Three-class tabular classification (sklearn make_classification, 20
standardised features, 5% label noise) with multinomial logistic regression:
a single nn.Linear, CrossEntropyLoss, SGD lr 0.01 momentum 0.9, batches of 32.

Cause of failure: nothing in the loop resets the gradients (no zero_grad and no
p.grad = None), so every step's .grad is the sum of all gradients so far and the
momentum update keeps pushing along that stale, ever-growing sum; the weights
swing back and forth and the loss never settles. FIXED=1 sets the gradients to
None before each backward pass.
"""
import os
import numpy as np
import torch
from sklearn.datasets import make_classification

np.random.seed(7)
torch.manual_seed(7)

X, y = make_classification(n_samples=2000, n_features=20, n_informative=8,
                           n_redundant=4, n_classes=3, flip_y=0.05,
                           class_sep=1.5, random_state=3)
X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
n_train = 1600
Xtr, ytr = torch.from_numpy(X[:n_train]), torch.from_numpy(y[:n_train])
Xte, yte = torch.from_numpy(X[n_train:]), torch.from_numpy(y[n_train:])

clf = torch.nn.Linear(20, 3)
loss_fn = torch.nn.CrossEntropyLoss()
opt = torch.optim.SGD(clf.parameters(), lr=0.01, momentum=0.9)

EPOCHS, BS = 15, 32
step_losses = []
for ep in range(EPOCHS):
    perm = np.random.permutation(n_train)
    for start in range(0, n_train - BS + 1, BS):
        b = torch.from_numpy(perm[start:start + BS])
        if os.environ.get("FIXED") == "1":
            for p in clf.parameters():
                p.grad = None
        loss = loss_fn(clf(Xtr[b]), ytr[b])
        loss.backward()
        opt.step()
        step_losses.append(loss.item())
    if ep % 5 == 4:
        print(f"[{ep + 1:02d}] loss={np.mean(step_losses[-50:]):.4f}")

if os.environ.get("PROBE") == "1":
    stored = torch.cat([p.grad.flatten() for p in clf.parameters()]).norm()
    fresh = torch.autograd.grad(loss_fn(clf(Xtr[b]), ytr[b]), list(clf.parameters()))
    fresh = torch.cat([g.flatten() for g in fresh]).norm()
    print(f"PROBE stored_to_fresh_grad_norm_ratio={float(stored / fresh):.3g}")

with torch.no_grad():
    test_acc = (clf(Xte).argmax(1) == yte).float().mean().item()
k = max(1, len(step_losses) // 20)
print(f"FINAL loss={np.mean(step_losses[-k:]):.4f} test_acc={test_acc:.3f}")
