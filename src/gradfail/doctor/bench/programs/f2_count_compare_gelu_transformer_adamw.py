"""Token-sequence classification: does token A occur more often than token B in a random
sequence of 16 tokens (vocabulary 8)?

Model: token + learned position embeddings -> 2 pre-norm nn.TransformerEncoderLayer blocks
(d_model 32, 4 heads, GELU feed-forward, LayerNorm) -> mean pooling -> linear head.
Training: AdamW with weight decay, linear warm-up then cosine decay via LambdaLR,
clip_grad_norm_(1.0), DataLoader batches of 64, cross-entropy.
Healthy: nothing is wrong; FIXED=1 changes nothing.
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"   # healthy program: nothing to fix
PROBE = os.environ.get("PROBE") == "1"

VOCAB, LEN, TOK_A, TOK_B = 8, 16, 1, 2


def make(n):
    seqs = torch.randint(0, VOCAB, (n, LEN))
    na = (seqs == TOK_A).sum(1)
    nb = (seqs == TOK_B).sum(1)
    keep = na != nb                       # drop ties
    return seqs[keep], (na > nb)[keep].long()


x_tr, y_tr = make(6000)
x_te, y_te = make(1500)
loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=64, shuffle=True, drop_last=True)


class CountTransformer(nn.Module):
    def __init__(self, d=32):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, d)
        self.pos = nn.Parameter(torch.randn(1, LEN, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=64, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 2)

    def forward(self, tokens):
        h = self.encoder(self.tok(tokens) + self.pos)
        return self.head(self.norm(h).mean(dim=1))


model = CountTransformer()
epochs = 5
total = epochs * len(loader)
warmup = 40
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: (s + 1) / warmup if s < warmup
    else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))))
loss_fn = nn.CrossEntropyLoss()

losses = []
for epoch in range(epochs):
    model.train()
    for xb, yb in loader:
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    print(f"epoch {epoch}  loss {np.mean(losses[-len(loader):]):.4f}")

model.eval()
with torch.no_grad():
    acc = (model(x_te).argmax(1) == y_te).float().mean().item()
if PROBE:
    chance = max(y_te.float().mean().item(), 1 - y_te.float().mean().item())
    print(f"PROBE test_acc_minus_chance={acc - chance:.3f}")
k = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_acc={acc:.3f}")
