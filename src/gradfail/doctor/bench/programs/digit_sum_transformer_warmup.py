"""Synthetic sequence classification: 12 digit tokens (0-9); the class says
whether their sum is low (< 50), middle (50-58) or high (> 58). Model: token +
position embeddings, a 2-layer nn.TransformerEncoder (d_model 32, 4 heads,
pre-LayerNorm, dropout 0.1), mean pooling, LayerNorm and a linear head;
AdamW lr 4e-3, weight decay 0.01, linear warm-up over 30 steps via LambdaLR,
gradient clipping at 1.0, fresh batches of 64.
Healthy: trains to high accuracy; FIXED=1 changes nothing.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(4)
np.random.seed(4)
VOCAB, SEQ, D = 10, 12, 32


def batch(n):
    x = torch.randint(0, VOCAB, (n, SEQ))
    s = x.sum(1)
    y = (s >= 50).long() + (s > 58).long()
    return x, y


class SumClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, D)
        self.pos = nn.Embedding(SEQ, D)
        enc_layer = nn.TransformerEncoderLayer(d_model=D, nhead=4, dim_feedforward=64,
                                               dropout=0.1, batch_first=True,
                                               norm_first=True)
        self.encoder = nn.TransformerEncoder(enc_layer, num_layers=2,
                                             enable_nested_tensor=False)
        self.norm = nn.LayerNorm(D)
        self.cls = nn.Linear(D, 3)

    def forward(self, x):
        h = self.tok(x) + self.pos(torch.arange(SEQ))
        h = self.encoder(h)
        return self.cls(self.norm(h.mean(1)))


model = SumClassifier()
optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=0.01)
WARMUP, STEPS = 30, 320
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / WARMUP))
x_val, y_val = batch(2000)
chance = torch.bincount(y_val).max().item() / len(y_val)

losses = []
for step in range(STEPS):
    model.train()
    xb, yb = batch(64)
    loss = F.cross_entropy(model(xb), yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())
    if (step + 1) % 80 == 0:
        print(f"step {step + 1:3d} lr {scheduler.get_last_lr()[0]:.1e} loss {np.mean(losses[-80:]):.4f}")

model.eval()
with torch.no_grad():
    val_acc = (model(x_val).argmax(1) == y_val).float().mean().item()
if os.environ.get("PROBE") == "1":
    print(f"PROBE val_acc_minus_majority_class={val_acc - chance:.3f}")
k = max(1, STEPS // 20)
print(f"FINAL loss={np.mean(losses[-k:]):.4f} val_acc={val_acc:.3f}")
