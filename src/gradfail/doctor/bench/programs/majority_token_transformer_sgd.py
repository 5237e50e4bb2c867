"""Token-sequence classification: 16 tokens drawn from a vocabulary of 20; the
class is the token that occurs most often (20 classes). Model: embedding plus
learned positions, a one-layer nn.TransformerEncoder (d_model 32, 4 heads,
LayerNorm), mean pooling and a LayerNorm/Linear head; SGD momentum 0.9,
lr 0.005, fresh batches of 64, nn.CrossEntropyLoss.

Cause of failure: the head ends in nn.Softmax, and CrossEntropyLoss expects
logits, so it gets probabilities and softmaxes them a second time; the gradient
is squashed by the extra softmax and accuracy crawls. FIXED=1 removes the
nn.Softmax so the loss receives logits.
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(2)
np.random.seed(2)
VOCAB, SEQ, D = 20, 16, 32


def sample(n):
    tokens = torch.randint(0, VOCAB, (n, SEQ))
    boost = torch.randint(0, VOCAB, (n, 1))
    where = torch.rand(n, SEQ).argsort(1)[:, :3]
    tokens.scatter_(1, where, boost.expand(-1, 3))
    counts = torch.stack([(tokens == k).sum(1) for k in range(VOCAB)], 1)
    return tokens, counts.argmax(1)


class MajorityClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        self.pos = nn.Parameter(0.02 * torch.randn(1, SEQ, D))
        layer = nn.TransformerEncoderLayer(D, nhead=4, dim_feedforward=64,
                                           dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1)
        head = [nn.LayerNorm(D), nn.Linear(D, VOCAB)]
        if os.environ.get("FIXED") != "1":
            head.append(nn.Softmax(dim=-1))
        self.head = nn.Sequential(*head)

    def forward(self, tokens):
        h = self.encoder(self.embed(tokens) + self.pos)
        return self.head(h.mean(1))


model = MajorityClassifier()
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
x_eval, y_eval = sample(2000)

STEPS = 500
losses = []
for step in range(STEPS):
    xb, yb = sample(64)
    out = model(xb)
    loss = loss_fn(out, yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if (step + 1) % 125 == 0:
        print(f"step {step + 1}: loss={np.mean(losses[-125:]):.4f}")

model.eval()
with torch.no_grad():
    out = model(x_eval)
    if os.environ.get("PROBE") == "1":
        # lowest loss reachable if every answer were right with the largest
        # output gap the head has produced: bounded when outputs are probabilities
        gap = (out.max(1).values - out.min(1).values).max().item()
        floor = math.log1p((VOCAB - 1) * math.exp(-gap))
        print(f"PROBE reachable_loss_floor={floor:.3f}")
    acc = (out.argmax(1) == y_eval).float().mean().item()
k = max(1, STEPS // 20)
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_acc={acc:.3f}")
