"""Synthetic 12x12 shape images (square, cross, ring, diagonal bar) drawn at a
random position with pixel noise. A 2-D CNN (Conv-BatchNorm-ReLU blocks,
max-pooling) with two heads: shape class (cross-entropy with label smoothing)
and shape centre (Huber loss), trained jointly with SGD + Nesterov momentum,
OneCycleLR, weight decay and a shuffled DataLoader.
Healthy: nothing is wrong; FIXED=1 changes nothing.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"   # healthy: no remedy to apply
PROBE = os.environ.get("PROBE") == "1"

S = 12


def draw(kind, cy, cx):
    img = np.zeros((S, S), dtype=np.float32)
    yy, xx = np.mgrid[0:S, 0:S]
    if kind == 0:                                   # filled square 4x4
        img[cy - 2:cy + 2, cx - 2:cx + 2] = 1
    elif kind == 1:                                 # cross
        img[cy - 2:cy + 3, cx] = 1
        img[cy, cx - 2:cx + 3] = 1
    elif kind == 2:                                 # ring
        r = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        img[(r > 1.5) & (r < 2.6)] = 1
    else:                                           # diagonal bar
        for d in range(-2, 3):
            img[cy + d, cx + d] = 1
    return img


def make_dataset(n, rng):
    imgs, kinds, centres = [], [], []
    for _ in range(n):
        k = rng.integers(0, 4)
        cy, cx = rng.integers(3, S - 3, 2)
        img = draw(k, cy, cx) * rng.uniform(0.6, 1.0) + 0.25 * rng.standard_normal((S, S))
        imgs.append(img)
        kinds.append(k)
        centres.append([(cy - S / 2) / (S / 2), (cx - S / 2) / (S / 2)])
    return (torch.tensor(np.array(imgs), dtype=torch.float32).unsqueeze(1),
            torch.tensor(kinds), torch.tensor(centres, dtype=torch.float32))


rng = np.random.default_rng(0)
X_tr, k_tr, c_tr = make_dataset(4500, rng)
X_te, k_te, c_te = make_dataset(1000, rng)
loader = DataLoader(TensorDataset(X_tr, k_tr, c_tr), batch_size=64, shuffle=True, drop_last=True)


def conv_block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class ShapeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_block(1, 16), conv_block(16, 16), nn.MaxPool2d(2),
                                      conv_block(16, 32), nn.MaxPool2d(2), nn.Flatten())
        self.cls_head = nn.Sequential(nn.Linear(32 * 9, 64), nn.ReLU(), nn.Linear(64, 4))
        self.loc_head = nn.Linear(32 * 9, 2)

    def forward(self, x):
        z = self.features(x)
        return self.cls_head(z), self.loc_head(z)


model = ShapeNet()
epochs = 5
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=epochs,
                                            steps_per_epoch=len(loader))
huber = nn.HuberLoss(delta=0.5)

losses = []
for epoch in range(epochs):
    model.train()
    for xb, kb, cb in loader:
        logits, loc = model(xb)
        loss = F.cross_entropy(logits, kb, label_smoothing=0.05) + huber(loc, cb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    print(f"epoch {epoch + 1} loss {np.mean(losses[-len(loader):]):.4f}")

model.eval()
with torch.no_grad():
    logits, loc = model(X_te)
    test_acc = (logits.argmax(1) == k_te).float().mean().item()
    loc_err_px = ((loc - c_te).abs() * S / 2).mean().item()
if PROBE:
    print(f"PROBE test_acc_over_chance={test_acc / 0.25:.2f}")
    print(f"PROBE centre_error_pixels={loc_err_px:.2f}")
k = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_acc={test_acc:.4f}")
