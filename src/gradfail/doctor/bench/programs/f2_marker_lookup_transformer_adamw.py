"""Marker lookup on synthetic token sequences with a small Transformer encoder.

Each 16-token sequence contains one marker token; the label is the token (one of 8) right
after it. Model: nn.Embedding + learned positions, 2-layer nn.TransformerEncoder (d=32,
4 heads, LayerNorm), mean pooling, linear classifier; AdamW lr 2e-3 with linear warm-up
(LambdaLR); nn.CrossEntropyLoss; batches of 64.
Cause of failure: the classifier ends in nn.Softmax, so CrossEntropyLoss (which applies its
own log-softmax) receives probabilities instead of logits: the loss cannot go below ~1.27 and
its gradients are squashed, so training crawls at poor accuracy.
FIXED=1 drops the final nn.Softmax so the loss gets logits.
"""
import os
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(6)
np.random.seed(6)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

VOCAB, L, MARK = 20, 16, 0
N_CLASSES = 8


def make_batch(n):
    seq = torch.randint(1, VOCAB, (n, L))
    pos = torch.randint(0, L - 1, (n,))
    label = torch.randint(0, N_CLASSES, (n,))
    rows = torch.arange(n)
    seq[rows, pos] = MARK
    seq[rows, pos + 1] = label + 1
    return seq, label


class MarkerTransformer(nn.Module):
    def __init__(self, d=32):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, d)
        self.pos = nn.Parameter(0.1 * torch.randn(L, d))
        layer = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=64, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2)
        head = [nn.LayerNorm(d), nn.Linear(d, N_CLASSES)]
        if not FIXED:
            head.append(nn.Softmax(dim=-1))
        self.head = nn.Sequential(*head)

    def forward(self, seq):
        h = self.encoder(self.tok(seq) + self.pos)
        return self.head(h.mean(1))


model = MarkerTransformer()
criterion = nn.CrossEntropyLoss()
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
warmup = 100
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))

test_x, test_y = make_batch(1000)
losses = []
n_steps = 800
for step in range(n_steps):
    xb, yb = make_batch(64)
    out = model(xb)
    loss = criterion(out, yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
    if step % 200 == 0:
        print(f"step {step} loss={np.mean(losses[-200:]):.4f}")

if PROBE:
    # gradient of the loss w.r.t. the head's pre-softmax scores, per sample
    scores = {}
    hook = model.head[1].register_forward_hook(lambda m, i, o: scores.update(z=o))
    out = model(test_x[:256])
    scores["z"].retain_grad()
    criterion(out, test_y[:256]).backward()
    hook.remove()
    g = scores["z"].grad.norm(dim=1).mean().item() * 256
    print(f"PROBE mean_grad_norm_wrt_class_scores={g:.3g}")

with torch.no_grad():
    acc = (model(test_x).argmax(1) == test_y).float().mean().item()
tail = max(1, n_steps // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_acc={acc:.3f}")
