"""Token-tally classification: is token 'A' more frequent than token 'B' in a 24-token sequence?

Model: nn.Embedding(8, 16) feeding a hand-written Elman cell (tanh, 48 units) unrolled in a
Python loop, linear head on the last state; cross-entropy; RMSprop lr 1e-3; DataLoader batches.
Cause of failure: the recurrent matrix is set to 3 x an orthogonal matrix, so every
singular value is 3 and the backward pass multiplies the gradient by a large factor per time
step: the gradients reaching the early steps are hundreds of times their healthy size, updates
are erratic and accuracy stays near chance. FIXED=1 uses a gain of 1 (plain orthogonal init).
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(2)
np.random.seed(2)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

VOCAB, SEQ, N = 8, 24, 6000
tokens = torch.randint(0, VOCAB, (N, SEQ))
labels = ((tokens == 1).sum(1) > (tokens == 2).sum(1)).long()
train_ds = TensorDataset(tokens[:5000], labels[:5000])
test_x, test_y = tokens[5000:], labels[5000:]
loader = DataLoader(train_ds, batch_size=50, shuffle=True)


class ElmanTagger(nn.Module):
    def __init__(self, emb=16, hidden=48):
        super().__init__()
        self.hidden = hidden
        self.embed = nn.Embedding(VOCAB, emb)
        self.w_in = nn.Linear(emb, hidden)
        self.w_rec = nn.Linear(hidden, hidden, bias=False)
        self.head = nn.Linear(hidden, 2)
        gain = 1.0 if FIXED else 3.0
        nn.init.orthogonal_(self.w_rec.weight, gain=gain)

    def forward(self, seq, h=None):
        e = self.embed(seq)
        if h is None:
            h = torch.zeros(seq.shape[0], self.hidden)
        states = []
        for t in range(seq.shape[1]):
            h = torch.tanh(self.w_in(e[:, t]) + self.w_rec(h))
            states.append(h)
        return self.head(h), states


model = ElmanTagger()
optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)

losses = []
for epoch in range(10):
    for xb, yb in loader:
        logits, _ = model(xb)
        loss = F.cross_entropy(logits, yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    if epoch % 3 == 0:
        print(f"epoch {epoch} loss={np.mean(losses[-100:]):.4f}")

if PROBE:
    # ratio of the gradient at the first hidden state to that at the last one
    h0 = torch.zeros(500, model.hidden, requires_grad=True)
    logits, states = model(test_x[:500], h0)
    for s in states:
        s.retain_grad()
    F.cross_entropy(logits, test_y[:500]).backward()
    growth = h0.grad.norm().item() / states[-1].grad.norm().item()
    print(f"PROBE grad_growth_first_to_last_step={growth:.3g}")

with torch.no_grad():
    acc = (model(test_x)[0].argmax(1) == test_y).float().mean().item()
tail = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_acc={acc:.3f}")
