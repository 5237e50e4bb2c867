"""Pointer lookup on synthetic token sequences: the first token is an index
p in 1..15 and the model must output the token found at position p. Model:
token + learned position embeddings, one pre-LayerNorm block with
nn.MultiheadAttention (4 heads) and a GELU feed-forward, linear head read at
position 0. AdamW with linear warm-up then cosine decay (LambdaLR), gradient
clipping, forward pass under CPU bfloat16 autocast.
Healthy: nothing is wrong; FIXED=1 changes nothing.
"""
import os
import math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"   # healthy: no remedy to apply
PROBE = os.environ.get("PROBE") == "1"

SEQ, VOCAB, D = 16, 24, 64


def make_batch(n, gen=None):
    toks = torch.randint(SEQ, VOCAB, (n, SEQ), generator=gen)      # content tokens 16..23
    ptr = torch.randint(1, SEQ, (n,), generator=gen)
    toks[:, 0] = ptr                                              # pointer tokens 1..15
    target = toks[torch.arange(n), ptr] - SEQ                     # 8 classes
    return toks, target


class PointerNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, D)
        self.pos = nn.Parameter(torch.randn(SEQ, D) * 0.02)
        self.ln1 = nn.LayerNorm(D)
        self.attn = nn.MultiheadAttention(D, 4, batch_first=True)
        self.ln2 = nn.LayerNorm(D)
        self.ff = nn.Sequential(nn.Linear(D, 4 * D), nn.GELU(), nn.Linear(4 * D, D))
        self.ln_out = nn.LayerNorm(D)
        self.head = nn.Linear(D, VOCAB - SEQ)

    def forward(self, toks):
        h = self.tok(toks) + self.pos
        a = self.ln1(h)
        h = h + self.attn(a, a, a, need_weights=False)[0]
        h = h + self.ff(self.ln2(h))
        return self.head(self.ln_out(h[:, 0]))


model = PointerNet()
steps, bs, warmup = 400, 32, 40
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: (s + 1) / warmup if s < warmup
    else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (steps - warmup))))

losses = []
for step in range(steps):
    toks, target = make_batch(bs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(toks)
    loss = F.cross_entropy(logits.float(), target)
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    losses.append(loss.item())
    if step % 100 == 99:
        print(f"step {step + 1} loss {np.mean(losses[-100:]):.4f}")

model.eval()
gen = torch.Generator().manual_seed(1234)
toks, target = make_batch(4000, gen)
with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
    test_acc = (model(toks).argmax(1) == target).float().mean().item()
if PROBE:
    print(f"PROBE test_acc_over_chance={test_acc / (1 / (VOCAB - SEQ)):.2f}")
k = steps // 20
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_acc={test_acc:.4f}")
