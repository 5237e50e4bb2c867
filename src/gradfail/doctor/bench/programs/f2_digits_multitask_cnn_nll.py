"""8x8 digits with a small 2-D CNN and two heads: the digit class (10-way) and an auxiliary
regression of the image's ink mass (Huber loss, weight 0.5).
Model: Conv2d(1,16,3)-ReLU-Conv2d(16,32,3)-ReLU-MaxPool-flatten-Linear(128,64)-ReLU trunk,
a class head and an ink head. Training: SGD with Nesterov momentum (lr 0.01) and StepLR
(x0.5 every 250 steps), DataLoader batches of 32, 900 steps.
Cause of failure: the class head returns softmax probabilities and they go straight into
F.nll_loss, which expects log-probabilities; the "loss" becomes -p_y, whose gradients are
squashed by the softmax, so the digit head crawls at low accuracy.
FIXED=1 passes log_softmax outputs to F.nll_loss instead.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(7)
np.random.seed(7)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

digits = load_digits()
imgs = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
ink = imgs.sum(dim=(1, 2, 3))
ink = (ink - ink.mean()) / ink.std()
imgs = (imgs - imgs.mean()) / imgs.std()
labels = torch.tensor(digits.target)
perm = torch.randperm(len(imgs))
tr, te = perm[:1300], perm[1300:]
loader = DataLoader(TensorDataset(imgs[tr], labels[tr], ink[tr]), batch_size=32, shuffle=True,
                    drop_last=True)


class MultiTaskCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3)
        self.conv2 = nn.Conv2d(16, 32, 3)
        self.fc = nn.Linear(32 * 2 * 2, 64)
        self.cls = nn.Linear(64, 10)
        self.ink = nn.Linear(64, 1)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        h = F.relu(self.fc(h.flatten(1)))
        return self.cls(h), self.ink(h).squeeze(-1)


def class_output(scores):
    # probabilities for the class head
    if FIXED:
        return F.log_softmax(scores, dim=1)
    return F.softmax(scores, dim=1)


model = MultiTaskCNN()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=250, gamma=0.5)

losses = []
step, n_steps = 0, 900
while step < n_steps:
    for xb, yb, inkb in loader:
        scores, ink_pred = model(xb)
        cls_loss = F.nll_loss(class_output(scores), yb)
        loss = cls_loss + 0.5 * F.huber_loss(ink_pred, inkb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        step += 1
        if step % 300 == 0:
            print(f"step {step} loss={np.mean(losses[-300:]):.4f}")
        if step == n_steps:
            break

model.eval()
if PROBE:
    # gradient of the class loss w.r.t. the class scores, relative to what cross-entropy on
    # the scores would give: (softmax(z) - onehot) / n
    scores, _ = model(imgs[te])
    scores.retain_grad()
    F.nll_loss(class_output(scores), labels[te]).backward()
    ref = (F.softmax(scores, 1) - F.one_hot(labels[te], 10).float()) / len(te)
    print(f"PROBE score_grad_over_ce_grad={scores.grad.norm().item() / ref.norm().item():.3g}")

with torch.no_grad():
    acc = (model(imgs[te])[0].argmax(1) == labels[te]).float().mean().item()
tail = max(1, n_steps // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_acc={acc:.3f}")
