"""Token-sequence classification with nn.Embedding -> nn.GRU -> linear: does token "A"
occur more often than token "B" in a sequence of 16 tokens from a vocabulary of 12?
AdamW (lr 3e-3) with a 30-step linear warm-up (LambdaLR), clip_grad_norm_ at 1.0.

Memory-saving gradient accumulation, done on purpose: each optimizer step accumulates 4
micro-batches of 16 (loss divided by 4), and zero_grad() is called once per optimizer
step, right after it. 250 optimizer steps (1000 micro-batches).
Healthy: the loss falls to near zero and held-out accuracy is ~99%. FIXED=1 changes nothing.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(18)
np.random.seed(18)

FIXED = os.environ.get("FIXED") == "1"  # nothing to fix
PROBE = os.environ.get("PROBE") == "1"

VOCAB, LEN, TOK_A, TOK_B = 12, 16, 3, 7


def make_data(n, gen):
    seqs = torch.randint(0, VOCAB, (n, LEN), generator=gen)
    # enrich A and B so that counts are close and the task is not trivial
    extra = torch.rand(n, LEN, generator=gen)
    seqs[extra < 0.12] = TOK_A
    seqs[(extra >= 0.12) & (extra < 0.24)] = TOK_B
    n_a, n_b = (seqs == TOK_A).sum(1), (seqs == TOK_B).sum(1)
    keep = n_a != n_b
    return seqs[keep], (n_a > n_b)[keep].long()


gen = torch.Generator().manual_seed(18)
X_train, y_train = make_data(30000, gen)
X_test, y_test = make_data(3000, gen)


class CountGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 16)
        self.gru = nn.GRU(16, 32, batch_first=True)
        self.cls = nn.Linear(32, 2)

    def forward(self, tokens):
        _, h = self.gru(self.embed(tokens))
        return self.cls(h[-1])


model = CountGRU()
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
WARMUP = 30
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / WARMUP))

ACCUM, MICRO, OPT_STEPS = 4, 16, 250
losses = []
optimizer.zero_grad()
for step in range(OPT_STEPS):
    step_loss = 0.0
    for _ in range(ACCUM):  # accumulate 4 micro-batches into one update
        idx = torch.randint(0, len(y_train), (MICRO,))
        loss = F.cross_entropy(model(X_train[idx]), y_train[idx]) / ACCUM
        loss.backward()
        step_loss += loss.item()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    losses.append(step_loss)
    if (step + 1) % 50 == 0:
        print(f"opt step {step + 1:3d}  loss {np.mean(losses[-50:]):.4f}")

model.eval()
with torch.no_grad():
    test_acc = (model(X_test).argmax(1) == y_test).float().mean().item()

if PROBE:
    print(f"PROBE test_acc_over_chance={test_acc / 0.5:.2f}")

tail = losses[-OPT_STEPS // 20:]
print(f"FINAL loss={np.mean(tail):.4f} test_acc={test_acc:.3f}")
