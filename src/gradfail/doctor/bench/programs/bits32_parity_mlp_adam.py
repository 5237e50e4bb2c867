"""Parity of 32 random bits, learned by a 3-layer MLP (nn.Sequential) with Adam.

Every step draws a fresh batch of 32 uniform random bits; the label is their XOR.
Failure: with the bits fed as they are, the full 32-bit parity is uncorrelated with every
low-order feature of the input, so the gradient of the loss carries no information about
the target: the loss stays at log 2 and accuracy at chance however long we train.
FIXED=1 changes the input representation: each bit is replaced by the running (prefix)
parity of the bits up to it, so the label is simply the last input feature.
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

N_BITS = 32
BATCH = 128
STEPS = 1500


def make_batch(n, gen=None):
    bits = torch.randint(0, 2, (n, N_BITS), generator=gen)
    y = bits.sum(1) % 2
    if FIXED:
        feats = torch.cumsum(bits, 1) % 2  # prefix parities
    else:
        feats = bits
    return feats.float() * 2 - 1, y.float()


model = nn.Sequential(
    nn.Linear(N_BITS, 128),
    nn.ReLU(),
    nn.Linear(128, 128),
    nn.ReLU(),
    nn.Linear(128, 1),
)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)

losses = []
for step in range(STEPS):
    x, y = make_batch(BATCH)
    logits = model(x).squeeze(1)
    loss = F.binary_cross_entropy_with_logits(logits, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step % 300 == 0:
        print(f"step {step:5d}  loss {loss.item():.4f}")

with torch.no_grad():
    xt, yt = make_batch(8192, torch.Generator().manual_seed(999))
    acc = ((model(xt).squeeze(1) > 0).float() == yt).float().mean().item()

if PROBE:
    # the label-dependent part of the loss gradient, -mean((y - mean y) * d logit / d theta),
    # on independent batches: its cosine across batches is ~0 when the gradient carries
    # no information about the target
    g = torch.Generator().manual_seed(123)
    params = list(model.parameters())
    cos = []
    for _ in range(16):
        vs = []
        for _ in range(2):
            x, y = make_batch(1024, g)
            label_term = -((y - y.mean()) * model(x).squeeze(1)).mean()
            vs.append(torch.cat([v.flatten() for v in torch.autograd.grad(label_term, params)]))
        cos.append(F.cosine_similarity(vs[0], vs[1], dim=0).item())
    print(f"PROBE label_grad_cosine={sum(cos) / len(cos):.3f}")

tail = losses[-STEPS // 20:]
print(f"FINAL loss={sum(tail) / len(tail):.4f} test_acc={acc:.3f}")
