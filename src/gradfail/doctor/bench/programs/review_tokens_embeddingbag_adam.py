"""Bag-of-tokens "review sentiment" classifier on synthetic token sequences (vocab 400,
30 tokens per review): nn.EmbeddingBag (mean) -> Linear, Adam, BCE-with-logits.

The labels are noisy by nature: each review's label is drawn from a logistic model of its
tokens, so even a perfect model is right only ~80% of the time.
Failure: the loop trains on one review per step (batch 1). Every single-review gradient is
dominated by its label noise and touches only that review's 30 embeddings, so the weights
drift noisily and held-out accuracy climbs slowly. FIXED=1 uses batches of 128 (same
steps, same learning rate).
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(8)
np.random.seed(8)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

VOCAB, LEN, N = 400, 30, 30000
token_polarity = torch.zeros(VOCAB)
token_polarity[:60] = torch.randn(60) * 1.5  # 60 sentiment-bearing tokens, rest neutral
docs = torch.randint(0, VOCAB, (N, LEN))
score = token_polarity[docs].sum(1) / 2.0
labels = torch.bernoulli(torch.sigmoid(score))
train_docs, train_y = docs[:25000], labels[:25000]
test_docs, test_score = docs[25000:], score[25000:]
bayes_acc = ((test_score > 0).float() == labels[25000:]).float().mean().item()


class BagClassifier(nn.Module):
    def __init__(self, vocab, dim=16):
        super().__init__()
        self.emb = nn.EmbeddingBag(vocab, dim, mode="mean")
        self.out = nn.Linear(dim, 1)

    def forward(self, tokens):
        return self.out(self.emb(tokens)).squeeze(-1)


model = BagClassifier(VOCAB)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
BATCH = 128 if FIXED else 1
STEPS = 1500


def minibatch_grad_snr(n_batches=100):
    gen = torch.Generator().manual_seed(13)
    gs = []
    for _ in range(n_batches):
        idx = torch.randint(0, len(train_y), (BATCH,), generator=gen)
        model.zero_grad()
        F.binary_cross_entropy_with_logits(model(train_docs[idx]), train_y[idx]).backward()
        gs.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    model.zero_grad()
    gs = torch.stack(gs)
    mean = gs.mean(0)
    return (mean.pow(2).sum() / (gs - mean).pow(2).sum(1).mean()).item()


losses, snrs = [], []
for step in range(STEPS):
    idx = torch.randint(0, len(train_y), (BATCH,))
    loss = F.binary_cross_entropy_with_logits(model(train_docs[idx]), train_y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if PROBE and step in (25, 50, 100):
        snrs.append(minibatch_grad_snr())
    if step % 500 == 0:
        print(f"step {step:5d}  loss {np.mean(losses[-100:]):.3f}")

with torch.no_grad():
    # accuracy against the noiseless sentiment (sign of the true score)
    agree = ((model(test_docs) > 0) == (test_score > 0)).float().mean().item()

if PROBE:
    # ||E g||^2 / E||g - E g||^2 of the training mini-batch gradient, at steps 25-100
    print(f"PROBE minibatch_grad_snr={np.mean(snrs):.3g}")

tail = losses[-STEPS // 20:]
print(f"FINAL loss={np.mean(tail):.3f} test_sentiment_acc={agree:.3f}")
