"""Delayed copy task with an LSTM: each sequence starts with 2 random symbols (from 6),
followed by 10 blank/noise steps; at the end the model must output the 2 symbols.
Embedding(8, 16) -> 1-layer nn.LSTM(64) -> linear heads (one per position), Adam
(lr 5e-3), cross-entropy over the 2 positions, gradient-norm clipping at 1.0, freshly
sampled batches of 64.

Healthy: the gated cell carries the symbols across the delay and training converges to
near-perfect recall.  FIXED=1 changes nothing.
"""
import os
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
FIXED = os.environ.get("FIXED") == "1"   # healthy program: no remedy to apply
PROBE = os.environ.get("PROBE") == "1"

N_SYM, N_COPY, DELAY = 6, 2, 10
BLANK, NOISE = N_SYM, N_SYM + 1
SEQ = N_COPY + DELAY


def sample(n):
    syms = torch.randint(0, N_SYM, (n, N_COPY))
    filler = torch.where(torch.rand(n, DELAY) < 0.3, NOISE, BLANK)
    return torch.cat([syms, filler], dim=1), syms


class CopyLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(N_SYM + 2, 16)
        self.lstm = nn.LSTM(16, 64, batch_first=True)
        self.heads = nn.Linear(64, N_COPY * N_SYM)

    def forward(self, tokens):
        h, _ = self.lstm(self.embed(tokens))
        return self.heads(h[:, -1]).view(-1, N_COPY, N_SYM)


model = CopyLSTM()
opt = torch.optim.Adam(model.parameters(), lr=5e-3)

STEPS = 700
losses = []
for step in range(STEPS):
    tokens, target = sample(64)
    logits = model(tokens)
    loss = F.cross_entropy(logits.reshape(-1, N_SYM), target.reshape(-1))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    losses.append(loss.item())
    if step % 150 == 0:
        print(f"step {step:3d} loss {loss.item():.3f}")

tokens, target = sample(2000)
with torch.no_grad():
    acc = (model(tokens).argmax(-1) == target).float().mean().item()
if PROBE:
    print(f"PROBE recall_acc_over_chance={acc / (1 / N_SYM):.3g}")
k = STEPS // 20
print(f"FINAL loss={sum(losses[-k:]) / k:.4f} recall_acc={acc:.3f}")
