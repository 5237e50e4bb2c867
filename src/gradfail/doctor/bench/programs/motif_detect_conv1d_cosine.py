"""Multi-label motif detection in synthetic 1-D signals (length 64): each of
three motifs (Gaussian bump, square pulse, short oscillation burst) is present
with probability 1/2 at a random position, plus noise. Model: a small 1-D CNN
with global max-pooling and 3 outputs; SGD momentum 0.9, lr 0.03 with cosine
annealing, batches of 64, nn.BCEWithLogitsLoss.

Cause of failure: the model's forward ends in torch.sigmoid, so
BCEWithLogitsLoss squashes the probabilities a second time; its gradient is
multiplied by the sigmoid's slope and training crawls.
FIXED=1 returns the raw scores (logits) and applies sigmoid only for prediction.
"""
import os

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(5)
np.random.seed(5)
FIXED = os.environ.get("FIXED") == "1"
L = 64
t = torch.arange(L).float()


def make_signals(n):
    x = 0.2 * torch.randn(n, L)
    y = (torch.rand(n, 3) < 0.5).float()
    pos = torch.randint(8, L - 8, (n, 3)).float()
    bump = torch.exp(-0.5 * ((t[None] - pos[:, :1]) / 2.0) ** 2)
    pulse = ((t[None] - pos[:, 1:2]).abs() <= 3).float()
    burst = torch.sin(2.0 * (t[None] - pos[:, 2:3])) * ((t[None] - pos[:, 2:3]).abs() <= 5).float()
    x = x + y[:, :1] * bump + y[:, 1:2] * pulse + y[:, 2:3] * burst
    return x.unsqueeze(1), y


class MotifNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 16, 7, padding=3), nn.ReLU(),
            nn.Conv1d(16, 32, 5, padding=2), nn.ReLU(),
            nn.AdaptiveMaxPool1d(1), nn.Flatten(),
        )
        self.out = nn.Linear(32, 3)

    def forward(self, x):
        scores = self.out(self.features(x))
        return scores if FIXED else torch.sigmoid(scores)


model = MotifNet()
criterion = nn.BCEWithLogitsLoss()
STEPS = 500
optimizer = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=STEPS)
x_test, y_test = make_signals(1000)


def predict_proba(x):
    out = model(x)
    return torch.sigmoid(out) if FIXED else out


hist = []
for step in range(STEPS):
    xb, yb = make_signals(64)
    optimizer.zero_grad()
    loss = criterion(model(xb), yb)
    loss.backward()
    optimizer.step()
    scheduler.step()
    hist.append(loss.item())
    if step % 125 == 124:
        print(f"{step + 1:4d} bce={np.mean(hist[-125:]):.4f}")

with torch.no_grad():
    if os.environ.get("PROBE") == "1":
        fed = model(x_test)
        frac = ((fed > 0) & (fed < 1)).float().mean().item()
        print(f"PROBE bce_logit_inputs_inside_0_1={frac:.2f}")
    label_acc = ((predict_proba(x_test) > 0.5).float() == y_test).float().mean().item()
k = max(1, STEPS // 20)
print(f"FINAL loss={np.mean(hist[-k:]):.4f} label_acc={label_acc:.3f}")
